/**
 * The downstream tasks a success started, as a worker's slot sees them: the heaviest on a queue the worker
 * consumes runs next in the same slot, claimed without a broker round trip; the messages of the others go
 * out in the background while the slot works on.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../core/logger.js';
import type { Broker } from '../broker/broker.js';
import { claimTask } from '../store/claims.js';
import type { Db } from '../store/db.js';
import type { OutboxRow } from '../store/outbox.js';
import type { ClaimedTry, HeldTries } from './held-tries.js';
import { OutboxSender } from './outbox-sender.js';
import type { RunDags } from './run-dags.js';

export class NextTries {
  private readonly sender: OutboxSender;

  constructor(
    private readonly db: Db,
    broker: Broker,
    private readonly workerId: string,
    private readonly queues: string[],
    private readonly held: HeldTries,
    private readonly runDags: RunDags,
    log: Logger,
  ) {
    this.sender = new OutboxSender(broker, db, log);
  }

  /** The heaviest of some tasks (or their messages) that is on a queue this worker consumes. */
  heaviestOfMine<T>(
    xs: readonly T[],
    of: (x: T) => { queue: string; priorityWeight: number },
  ): T | undefined {
    let best: T | undefined;
    for (const x of xs) {
      const { queue, priorityWeight } = of(x);
      if (!this.queues.includes(queue) && !this.queues.includes('*')) continue;
      if (best === undefined || priorityWeight > of(best).priorityWeight) best = x;
    }
    return best;
  }

  /**
   * Claims a task this worker has just queued, removing its unsent message. Null when the task can no
   * longer run (its run was cancelled meanwhile); 'unclaimed' when the database did not answer, and the
   * message must be published after all.
   */
  async claimNext(row: OutboxRow, log: Logger): Promise<ClaimedTry | null | 'unclaimed'> {
    const m = row.payload;
    const token = randomUUID();
    this.held.claiming.add(token);
    try {
      const claim = await claimTask(this.db, m, this.workerId, token, this.runDags.knownUpstream(m), row.id);
      if (!claim) return null;
      this.held.hold(m, token);
      this.runDags.remember(m.runId, claim.dagHash);
      return { m, token, claim };
    } catch (err) {
      // Not claimed here: its message goes out as usual, so any worker can take it.
      log.warn({ err: (err as Error).message, taskId: m.taskId }, 'claiming the next task failed');
      return 'unclaimed';
    } finally {
      this.held.claiming.delete(token);
    }
  }

  /**
   * Publishes queued tasks' messages while the slot goes on to its next task: the messages are in the
   * outbox (committed with their tasks), so a worker that dies first loses nothing, the schedulers'
   * stale-outbox sweep sends them. Waiting cost every next task a publisher confirm and a delete. The
   * slots' messages go out together (OutboxSender).
   */
  publishInBackground(rows: OutboxRow[]) {
    this.sender.send(rows);
  }

  /** Resolves once the messages handed to publishInBackground are sent (or left to the stale sweep). */
  published(): Promise<void> {
    return this.sender.idle();
  }
}
