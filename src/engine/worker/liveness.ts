/**
 * A worker's liveness: its heartbeat keeps its claims alive and finds those it lost (the task is stopped),
 * and gives back claims it holds without knowing. A cancelled or timed-out run announces itself on the
 * claims channel, so its tasks stop at once rather than at the next heartbeat (which remains the fallback
 * if a notification is missed); the variables channel tells the masks to read secrets again.
 */
import type { Logger } from '../../core/logger.js';
import { lostTry } from '../lost-try.js';
import type { Db, Listener } from '../store/db.js';
import { orphanedClaims } from '../store/recovery.js';
import { finishTry } from '../store/results.js';
import * as tis from '../store/task-instances.js';
import * as workers from '../store/workers.js';
import type { HeldTries, Running } from './held-tries.js';
import type { SecretMasks } from './secret-masks.js';

export class Liveness {
  private timer: NodeJS.Timeout | null = null;
  private listener: Listener | null = null;

  constructor(
    private readonly db: Db,
    private readonly workerId: string,
    private readonly held: HeldTries,
    private readonly masks: SecretMasks,
    private readonly log: Logger,
  ) {}

  async start(heartbeatMs: number): Promise<void> {
    this.timer = setInterval(() => void this.heartbeat(), heartbeatMs);
    const variables = this.db.channel('variables');
    this.listener = this.db.listen(
      [this.db.channel('claims'), variables],
      (ch, runId) => {
        if (ch === variables) this.masks.forget();
        else if ([...this.held.running.values()].some((r) => r.message.runId === runId))
          void this.heartbeat();
      },
      () => {
        // Changes to variables may have been missed while the connection was down.
        this.masks.forget();
        void this.heartbeat();
      },
    );
    await this.listener.ready;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.listener?.close();
  }

  private async heartbeat() {
    try {
      const known = [...this.held.running.keys(), ...this.held.claiming];
      await this.releaseOrphans(known);
      const lost = await workers.heartbeat(this.db, this.workerId, [...this.held.running.keys()]);
      for (const token of lost) {
        const r = this.held.running.get(token);
        if (!r || r.abort.signal.aborted) continue;
        const reason = await this.lostReason(r);
        this.log.warn({ runId: r.message.runId, taskId: r.message.taskId }, `${reason}; stopping task`);
        r.abort.abort(reason);
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'heartbeat failed');
    }
  }

  /** Why a claim is gone: the run was cancelled or timed out, or this worker was declared lost. */
  private async lostReason(r: Running): Promise<string> {
    const ti = await tis.getTaskInstance(this.db, r.message.runId, r.message.taskId).catch(() => undefined);
    if (ti?.state === 'cancelled' && ti.try_number === r.message.tryNumber) return ti.error ?? 'cancelled';
    return 'claim lost (declared dead?)';
  }

  /**
   * Claims this worker holds in the database without knowing (the claim committed, its answer was lost
   * with the connection, the message was released): give them back as lost tries, so they run again
   * instead of staying 'running' forever behind a live heartbeat.
   */
  private async releaseOrphans(known: string[]) {
    for (const o of await orphanedClaims(this.db, this.workerId, known)) {
      const ok = await finishTry(
        this.db,
        o,
        o.token,
        lostTry(`worker ${this.workerId} lost the answer to its claim (database connection lost); run again`),
        this.db.channel('events'),
      );
      if (ok)
        this.log.warn({ runId: o.runId, taskId: o.taskId, try: o.tryNumber }, 'orphaned claim given back');
    }
  }
}
