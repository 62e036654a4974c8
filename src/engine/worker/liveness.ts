/**
 * A worker's liveness: its heartbeat keeps its claims alive and finds those it lost (the task is stopped),
 * and gives back claims it holds without knowing (orphaned-claims.ts). The heartbeat runs in a thread of its own
 * (heartbeat-thread.ts) that the main thread's work cannot starve; the rest needs the main thread's state
 * and stays here. A cancelled or timed-out run announces itself on the claims channel, so its tasks stop
 * at once rather than at the next heartbeat (which remains the fallback if a notification is missed); the
 * variables channel tells the masks to read secrets again.
 */
import type { Worker as Thread } from 'node:worker_threads';
import { codeThread } from '../../core/code-thread.js';
import type { Logger } from '../../core/logger.js';
import type { Db, Listener } from '../store/db.js';
import * as tis from '../store/task-instances.js';
import type { FromHeartbeat, HeartbeatThreadData, ToHeartbeat } from './heartbeat-thread.js';
import type { HeldTries, Running } from './held-tries.js';
import { releaseOrphanedClaims } from './orphaned-claims.js';
import type { SecretMasks } from './secret-masks.js';

const THREAD = new URL('./heartbeat-thread.js', import.meta.url);

export interface LivenessTimes {
  heartbeatMs: number;
  /** How long the main thread may leave the heartbeat thread's pings unanswered before the process is killed. */
  mainStallKillMs: number;
}

export class Liveness {
  private timer: NodeJS.Timeout | null = null;
  private listener: Listener | null = null;
  private thread: Thread | null = null;
  private threadExited: Promise<void> = Promise.resolve();
  private stopping = false;
  /** The claim tokens the heartbeat thread was last told. */
  private told = new Set<string>();

  constructor(
    private readonly db: Db,
    private readonly workerId: string,
    private readonly held: HeldTries,
    private readonly masks: SecretMasks,
    private readonly log: Logger,
  ) {}

  async start(times: LivenessTimes): Promise<void> {
    await this.startThread(times);
    this.timer = setInterval(() => void this.releaseOrphans(), times.heartbeatMs);
    const variables = this.db.channel('variables');
    this.listener = this.db.listen(
      [this.db.channel('claims'), variables],
      (ch, runId) => {
        if (ch === variables) this.masks.forget();
        else if ([...this.held.running.values()].some((r) => r.message.runId === runId)) this.beatNow();
      },
      () => {
        // Changes to variables may have been missed while the connection was down.
        this.masks.forget();
        this.beatNow();
      },
    );
    await this.listener.ready;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    await this.listener?.close();
    this.send({ t: 'stop' });
    // A heartbeat stuck on a dead connection must not hold up the worker's stop.
    const thread = this.thread;
    const late = setTimeout(() => void thread?.terminate(), 5000);
    await this.threadExited;
    clearTimeout(late);
  }

  private startThread(times: LivenessTimes): Promise<void> {
    const o = this.db.options;
    const workerData: HeartbeatThreadData = {
      url: o.url,
      schema: this.db.schema,
      applicationName: o.applicationName ?? 'airtasks',
      workerId: this.workerId,
      ...times,
      logLevel: this.log.level,
      stderrIsTTY: Boolean(process.stderr.isTTY),
    };
    const thread = codeThread(THREAD, { workerData });
    this.thread = thread;
    this.threadExited = new Promise((resolve) => thread.once('exit', () => resolve()));
    this.told = new Set();
    thread.on('message', (m: FromHeartbeat) => this.onMessage(m));
    // Without its heartbeat the worker would soon be declared lost while its tasks run: start another.
    thread.on('exit', (code) => {
      if (this.stopping || this.thread !== thread) return;
      this.log.error({ code }, 'the heartbeat thread ended; starting another');
      setTimeout(() => {
        if (!this.stopping) this.startThread(times).catch(() => undefined);
      }, times.heartbeatMs);
    });
    return new Promise((resolve, reject) => {
      thread.on('error', (err) => {
        this.log.error({ err: err.message }, 'the heartbeat thread failed');
        reject(err);
      });
      thread.on('message', (m: FromHeartbeat) => {
        if (m.t === 'ready') resolve();
      });
    });
  }

  private onMessage(m: FromHeartbeat) {
    if (m.t === 'ping') this.send({ t: 'pong', tokens: this.changedTokens() });
    else if (m.t === 'lost') void this.stopLost(m.tokens);
    else if (m.t === 'failed') this.log.warn({ err: m.err }, 'heartbeat failed');
  }

  /** The tokens of the tries this worker runs, when they changed since the thread was last told. */
  private changedTokens(): string[] | undefined {
    const running = this.held.running;
    if (running.size === this.told.size && [...this.told].every((t) => running.has(t))) return undefined;
    this.told = new Set(running.keys());
    return [...this.told];
  }

  /** A heartbeat now, with the tokens held now: a run was cancelled, or the LISTEN connection came back. */
  private beatNow() {
    this.told = new Set(this.held.running.keys());
    this.send({ t: 'beat', tokens: [...this.told] });
  }

  private send(m: ToHeartbeat) {
    this.thread?.postMessage(m);
  }

  private async stopLost(tokens: string[]) {
    try {
      for (const token of tokens) {
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

  private async releaseOrphans() {
    try {
      await releaseOrphanedClaims(this.db, this.db.channel('events'), this.workerId, this.held, this.log);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'heartbeat failed');
    }
  }
}
