/**
 * Admission: of the tasks a scheduling pass would queue, those that fit under their DAG's max_active_tasks
 * and in their pool's free slots. Candidates go by priority weight (highest first), then run age, so when
 * slots are scarce the heaviest ready tasks get them; a task that needs more slots than are free waits and
 * lighter ones that fit go ahead of it (as in Airflow).
 */
import type { SerializedDag } from '../../core/dag-model.js';
import type { Logger } from '../../core/logger.js';
import { taskOf } from '../dag/versions.js';
import type { Queryable } from '../store/db.js';
import { lockPoolSlots } from '../store/pools.js';
import { type QueueRequest, lockTaskSlots } from '../store/queueing.js';
import type { RunRow } from '../store/runs.js';

/** The row locks admission counts slots under (the store's, but for tests). */
export interface SlotLocks {
  /** Free task slots of those DAGs that set max_active_tasks (absent: no limit); locks their rows. */
  dags(c: Queryable, dagIds: string[]): Promise<Map<string, number>>;
  /** Size and free slots of the pools that exist among the names; locks their rows. */
  pools(c: Queryable, names: string[]): Promise<Map<string, { slots: number; free: number }>>;
}

export type AdmittedRun = Pick<RunRow, 'run_id' | 'dag_id' | 'dag_hash'>;

export class Admission {
  /** When each warning was last logged, by key. */
  private readonly warned = new Map<string, number>();

  constructor(
    private readonly log: Logger,
    private readonly locks: SlotLocks = { dags: lockTaskSlots, pools: lockPoolSlots },
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Keeps of toQueue the tasks that fit, in the order they were admitted. `runs` are the runs of the pass
   * (oldest first), `dags` their DAG versions by hash.
   */
  async admit(
    c: Queryable,
    runs: readonly AdmittedRun[],
    dags: ReadonlyMap<string, SerializedDag>,
    toQueue: QueueRequest[],
  ): Promise<QueueRequest[]> {
    if (toQueue.length === 0) return toQueue;
    const runOf = new Map(runs.map((r, i) => [r.run_id, { run: r, age: i }]));
    const candidates = toQueue
      .map((q) => {
        const { run, age } = runOf.get(q.runId)!;
        return { q, dagId: run.dag_id, age, t: taskOf(dags.get(run.dag_hash)!, q.taskId) };
      })
      .sort((a, b) => (b.t?.priorityWeight ?? 0) - (a.t?.priorityWeight ?? 0) || a.age - b.age);
    // Locks in a fixed order (DAG rows, then pool rows) so two schedulers never deadlock.
    const dagFree = await this.locks.dags(c, [...new Set(candidates.map((x) => x.dagId))]);
    const poolNames = [...new Set(candidates.flatMap((x) => (x.t?.pool ? [x.t.pool] : [])))];
    const pools = await this.locks.pools(c, poolNames);
    const kept: QueueRequest[] = [];
    for (const x of candidates) {
      const dagLeft = dagFree.get(x.dagId);
      if (dagLeft !== undefined && dagLeft <= 0) continue;
      const poolName = x.t?.pool;
      if (poolName) {
        const need = x.t?.poolSlots ?? 1;
        const pool = pools.get(poolName);
        if (!pool) {
          this.warnOnce(
            `missing:${poolName}`,
            { pool: poolName, taskId: x.q.taskId, runId: x.q.runId },
            `task waits for pool "${poolName}", which does not exist: create it with \`airtasks pools set ${poolName} <slots>\``,
          );
          continue;
        }
        if (need > pool.slots) {
          this.warnOnce(
            `size:${poolName}:${need}`,
            { pool: poolName, slots: pool.slots, needs: need, taskId: x.q.taskId },
            `task needs more slots than pool "${poolName}" has; it waits until the pool is made bigger`,
          );
          continue;
        }
        if (need > pool.free) continue;
        pool.free -= need;
      }
      if (dagLeft !== undefined) dagFree.set(x.dagId, dagLeft - 1);
      kept.push(x.q);
    }
    return kept;
  }

  /** Logs a warning at most once a minute per key: a waiting task is looked at on every pass. */
  private warnOnce(key: string, fields: Record<string, unknown>, message: string) {
    const now = this.now();
    if ((this.warned.get(key) ?? 0) > now - 60_000) return;
    this.warned.set(key, now);
    this.log.warn(fields, message);
  }
}
