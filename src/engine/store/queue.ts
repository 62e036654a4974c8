/** SQL of the Postgres broker: a queue table with leases, claimed with FOR UPDATE SKIP LOCKED. */
import type { Queryable } from './db.js';

export interface QueueRow {
  id: number;
  queue: string;
  payload: unknown;
  deliveries: number;
}

export async function enqueue(
  q: Queryable,
  msgs: Array<{ queue: string; priority: number; payload: unknown }>,
  channel: string,
) {
  if (msgs.length === 0) return;
  await q.query(
    `WITH ins AS (
       INSERT INTO queue_messages (queue, priority, payload)
       SELECT * FROM unnest($1::text[], $2::int[], $3::jsonb[]) RETURNING queue)
     SELECT pg_notify($4, queue) FROM (SELECT DISTINCT queue FROM ins) AS d`,
    [
      msgs.map((m) => m.queue),
      msgs.map((m) => m.priority),
      msgs.map((m) => JSON.stringify(m.payload)),
      channel,
    ],
  );
}

/** Leases up to `limit` messages from the given queues ('*' = every queue), highest priority first, then oldest. */
export async function lease(
  q: Queryable,
  queues: string[],
  limit: number,
  owner: string,
  leaseMs: number,
): Promise<QueueRow[]> {
  return (
    await q.query<QueueRow>(
      `UPDATE queue_messages m SET lease_owner = $3, lease_until = now() + make_interval(secs => $4),
         deliveries = m.deliveries + 1
       FROM (SELECT id FROM queue_messages
             WHERE ('*' = ANY($1) OR queue = ANY($1)) AND (lease_until IS NULL OR lease_until < now())
             ORDER BY priority DESC, id LIMIT $2 FOR UPDATE SKIP LOCKED) AS pick
       WHERE m.id = pick.id
       RETURNING m.id, m.queue, m.payload, m.deliveries`,
      [queues, limit, owner, leaseMs / 1000],
    )
  ).rows;
}

export async function ackMessages(q: Queryable, ids: number[], owner: string) {
  if (ids.length > 0)
    await q.query(`DELETE FROM queue_messages WHERE id = ANY($1) AND lease_owner = $2`, [ids, owner]);
}

/** Gives leased messages back, waking the consumers of their queues on `channel`. */
export async function releaseMessages(q: Queryable, ids: number[], owner: string, channel: string) {
  if (ids.length > 0) {
    await q.query(
      `WITH r AS (
         UPDATE queue_messages SET lease_owner = NULL, lease_until = NULL
         WHERE id = ANY($1) AND lease_owner = $2 RETURNING queue)
       SELECT pg_notify($3, queue) FROM (SELECT DISTINCT queue FROM r) AS d`,
      [ids, owner, channel],
    );
  }
}

export async function extendLeases(q: Queryable, ids: number[], owner: string, leaseMs: number) {
  if (ids.length > 0) {
    await q.query(
      `UPDATE queue_messages SET lease_until = now() + make_interval(secs => $3) WHERE id = ANY($1) AND lease_owner = $2`,
      [ids, owner, leaseMs / 1000],
    );
  }
}

export async function queueDepths(
  q: Queryable,
): Promise<Array<{ queue: string; ready: number; unacked: number }>> {
  return (
    await q.query<{ queue: string; ready: number; unacked: number }>(
      `SELECT queue, count(*) FILTER (WHERE lease_until IS NULL OR lease_until < now())::int AS ready,
              count(*) FILTER (WHERE lease_until >= now())::int AS unacked
       FROM queue_messages GROUP BY queue ORDER BY queue`,
    )
  ).rows;
}
