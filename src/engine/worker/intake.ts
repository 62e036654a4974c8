/**
 * A worker's intake: each delivery from its queues stands for one of its slots (prefetch = concurrency).
 * The try is claimed with a conditional update (batched with other claims, see Batcher); a stale or
 * duplicate message is acked and ignored. A claimed try runs, then any next try claimed in the same slot
 * (see ResultStore), and the delivery is acked when the slot frees.
 */
import { randomUUID } from 'node:crypto';
import { sleep } from '../../core/backoff.js';
import type { Logger } from '../../core/logger.js';
import type { Delivery } from '../broker/broker.js';
import type { Claim } from '../store/claims.js';
import type { ClaimedTry, HeldTries } from './held-tries.js';
import type { RunDags } from './run-dags.js';
import type { TryRunner } from './try-runner.js';
import type { TurnStatements } from './turn-statements.js';

export class Intake {
  /** Deliveries being handled: stop() waits for them. */
  readonly inflight = new Set<Promise<void>>();
  constructor(
    /** Claims of messages arriving together go to Postgres together, and with results of the moment. */
    private readonly turn: TurnStatements,
    private readonly held: HeldTries,
    private readonly runDags: RunDags,
    private readonly tries: TryRunner,
    private readonly log: Logger,
  ) {}

  accept(d: Delivery) {
    const p = this.handle(d).catch((err) =>
      this.log.error({ err: (err as Error).message }, 'task handling failed'),
    );
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private async handle(d: Delivery): Promise<void> {
    const m = d.body;
    const ids = { runId: m.runId, taskId: m.taskId, try: m.tryNumber };
    if (this.held.draining) return d.release();
    const token = randomUUID();
    let claim: Claim | null;
    this.held.claiming.add(token);
    try {
      claim = await this.turn.claim({ m, token, upstream: this.runDags.knownUpstream(m), outboxId: null });
    } catch (err) {
      // The database is unreachable: give the message back a little later (an immediate requeue would spin).
      // The claim may still have committed with its answer lost: the heartbeat finds such an orphan.
      this.held.claiming.delete(token);
      this.log.warn({ ...ids, err: (err as Error).message }, 'claim failed; message released');
      await sleep(1000);
      return d.release();
    }
    if (claim) {
      this.held.hold(m, token);
      this.runDags.remember(m.runId, claim.dagHash);
    }
    this.held.claiming.delete(token);
    if (!claim) {
      this.log.debug({ ...ids, redelivered: d.redelivered }, 'stale or duplicate message ignored');
      return d.ack();
    }
    // The delivery stands for one of this worker's slots: a downstream task this worker claims itself
    // (a "next" try, see ResultStore) runs in the same slot, and the delivery is acked when the slot frees.
    let acked = false;
    const settle = async () => {
      if (acked) return;
      acked = true;
      await d.ack();
    };
    let next: ClaimedTry | null = { m, token, claim };
    while (next) next = await this.tries.run(next, settle);
    await settle();
  }
}
