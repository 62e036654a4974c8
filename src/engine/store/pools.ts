/** Pools: named slot counts shared across DAGs, and what occupies them. */
import type { Queryable } from './db.js';

export interface PoolRow {
  name: string;
  slots: number;
  description: string;
  updated_at: Date;
}

export interface PoolUsage extends PoolRow {
  /** Slots taken by running task instances. */
  running: number;
  /** Slots taken by queued task instances (sent to a worker, not started yet). */
  queued: number;
  /** Task instances waiting for this pool's slots (upstreams done, not queued yet, or up for retry). */
  waiting: number;
}

/** Creates the pool or changes its size; wakes the schedulers (more slots may let waiting tasks go). */
export async function setPool(
  q: Queryable,
  name: string,
  slots: number,
  description: string | undefined,
  channel: string,
): Promise<void> {
  await q.query(
    `WITH up AS (
       INSERT INTO pools (name, slots, description) VALUES ($1, $2, coalesce($3, ''))
       ON CONFLICT (name) DO UPDATE SET slots = EXCLUDED.slots,
         description = coalesce($3, pools.description), updated_at = now()
       RETURNING name)
     SELECT pg_notify($4, 'pool:' || name) FROM up`,
    [name, slots, description ?? null, channel],
  );
}

const USAGE = `
  SELECT p.*,
    coalesce(sum(t.pool_slots) FILTER (WHERE t.state = 'running'), 0)::int AS running,
    coalesce(sum(t.pool_slots) FILTER (WHERE t.state = 'queued'), 0)::int AS queued,
    count(t.*) FILTER (WHERE t.state IN ('none', 'up_for_retry'))::int AS waiting
  FROM pools p LEFT JOIN task_instances t ON t.pool = p.name
    AND t.state IN ('queued', 'running', 'none', 'up_for_retry')`;

export async function listPools(q: Queryable): Promise<PoolUsage[]> {
  return (await q.query<PoolUsage>(`${USAGE} GROUP BY p.name ORDER BY p.name`)).rows;
}

export async function getPool(q: Queryable, name: string): Promise<PoolUsage | undefined> {
  return (await q.query<PoolUsage>(`${USAGE} WHERE p.name = $1 GROUP BY p.name`, [name])).rows[0];
}

/** Slot counts of those of the named pools that exist. */
export async function poolSizes(q: Queryable, names: string[]): Promise<Map<string, number>> {
  const r = await q.query<{ name: string; slots: number }>(
    `SELECT name, slots FROM pools WHERE name = ANY($1)`,
    [names],
  );
  return new Map(r.rows.map((p) => [p.name, p.slots]));
}

/**
 * Deletes a pool unless task instances occupy it (queued or running). The row is locked first, so a
 * scheduler cannot hand out one of its slots in between. Returns 'deleted', 'missing' or 'busy'.
 */
export async function deletePool(q: Queryable, name: string): Promise<'deleted' | 'missing' | 'busy'> {
  const locked = await q.query(`SELECT 1 FROM pools WHERE name = $1 FOR UPDATE`, [name]);
  if (locked.rowCount === 0) return 'missing';
  const busy = await q.query(
    `SELECT 1 FROM task_instances WHERE pool = $1 AND state IN ('queued', 'running') LIMIT 1`,
    [name],
  );
  if ((busy.rowCount ?? 0) > 0) return 'busy';
  await q.query(`DELETE FROM pools WHERE name = $1`, [name]);
  return 'deleted';
}

/**
 * Size and free slots of the named pools, locked (in name order, after the DAG rows of max_active_tasks)
 * until the transaction ends so that two schedulers cannot hand out the same slot. Pools that do not
 * exist are absent from the result.
 */
export async function lockPoolSlots(
  q: Queryable,
  names: string[],
): Promise<Map<string, { slots: number; free: number }>> {
  if (names.length === 0) return new Map();
  const pools = (
    await q.query<{ name: string; slots: number }>(
      `SELECT name, slots FROM pools WHERE name = ANY($1) ORDER BY name FOR UPDATE`,
      [names],
    )
  ).rows;
  if (pools.length === 0) return new Map();
  // Counted after the lock, in a statement of its own: it sees what the previous holder committed.
  const used = new Map(
    (
      await q.query<{ pool: string; n: number }>(
        `SELECT pool, sum(pool_slots)::int AS n FROM task_instances
         WHERE pool = ANY($1) AND state IN ('queued', 'running') GROUP BY pool`,
        [pools.map((p) => p.name)],
      )
    ).rows.map((r) => [r.pool, r.n]),
  );
  return new Map(
    pools.map((p) => [p.name, { slots: p.slots, free: Math.max(0, p.slots - (used.get(p.name) ?? 0)) }]),
  );
}
