/**
 * Queues the downstream tasks that committed successes made ready, when they need a look at other tasks'
 * states (the 'downstream' successor plan, see successors.ts): one transaction per run under the run's
 * lock, so that workers finishing tasks of one run judge one after the other and the last sees every
 * result before it. One judgement is in flight at a time: this worker's successes arriving meanwhile share
 * the next one, instead of queueing on the run's lock in Postgres. A failure leaves the step to the
 * schedulers (their sweep also catches a worker that died between its result and this).
 */
import type { SerializedTask } from '../../core/dag-model.js';
import type { Logger } from '../../core/logger.js';
import type { Db } from '../store/db.js';
import type { OutboxRow } from '../store/outbox.js';
import { queueTasks } from '../store/queueing.js';
import { lockRunToAdvance, notifyRun } from '../store/run-progress.js';
import * as tis from '../store/task-instances.js';
import { Batcher } from './batcher.js';
import { judge } from './successors.js';

/** A committed success whose downstream tasks this worker judges. */
export interface AdvanceRequest {
  runId: string;
  plan: { downstream: SerializedTask[]; read: string[] };
}

export interface Advanced {
  /** Tasks it made ready, queued, with their messages not yet published. */
  outbox: OutboxRow[];
  /** Every downstream task had finished already: the run may be over. */
  mayEnd: boolean;
}

export class RunAdvance {
  private readonly batcher: Batcher<AdvanceRequest, Advanced>;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
  ) {
    this.batcher = new Batcher((items) => this.advanceRuns(items), { maxInFlight: 1, maxBatch: 256 });
  }

  /** Judges a committed success's downstream tasks (with those of other successes arriving meanwhile). */
  add(req: AdvanceRequest): Promise<Advanced> {
    return this.batcher.add(req);
  }

  private async advanceRuns(items: AdvanceRequest[]): Promise<Advanced[]> {
    const channel = this.db.channel('events');
    const out: Advanced[] = items.map(() => ({ outbox: [], mayEnd: false }));
    const byRun = new Map<string, number[]>();
    items.forEach((x, i) => {
      const list = byRun.get(x.runId);
      if (list) list.push(i);
      else byRun.set(x.runId, [i]);
    });
    for (const [runId, idx] of byRun) {
      try {
        await this.db.tx(async (c) => {
          if ((await lockRunToAdvance(c, runId)) !== 'running') return;
          const reads = [...new Set(idx.flatMap((i) => items[i]!.plan.read))];
          const states = await tis.statesOf(c, runId, reads);
          const judged = idx.map((i) => judge(items[i]!.plan.downstream, states));
          const ready = [...new Set(judged.flatMap((j) => j.queue))];
          const rows = await queueTasks(
            c,
            ready.map((taskId) => ({ runId, taskId, from: 'none' as const })),
          );
          if (judged.some((j) => j.scheduler)) await notifyRun(c, channel, runId);
          // Each queued task goes to the first success that made it ready (that one may run it next).
          const taken = new Set<number>();
          idx.forEach((i, k) => {
            const j = judged[k]!;
            const mine = rows.filter((r) => !taken.has(r.id) && j.queue.includes(r.payload.taskId));
            for (const r of mine) taken.add(r.id);
            out[i] = { outbox: mine, mayEnd: !j.scheduler && !j.unfinished };
          });
        });
      } catch (err) {
        this.log.warn(
          { runId, err: (err as Error).message },
          'queueing the next tasks failed; the schedulers will',
        );
        await notifyRun(this.db, channel, runId).catch(() => undefined);
        for (const i of idx) out[i] = { outbox: [], mayEnd: false };
      }
    }
    return out;
  }
}
