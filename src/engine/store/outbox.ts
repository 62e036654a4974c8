/** The transactional outbox of task messages (see migration 0001). */
import type { TaskMessage } from '../../core/states.js';
import { prepared, type Queryable } from './db.js';

/** A task's message waiting to be published, written in the transaction that queued the task. */
export interface OutboxRow {
  id: number;
  queue: string;
  priority: number;
  payload: TaskMessage;
}

/**
 * Takes the rows for its publisher: deletes those still there and not locked by the stale sweep, and
 * returns their ids. Run it in the transaction that publishes them: until that commits the rows stay
 * locked, so the sweep (FOR UPDATE SKIP LOCKED) passes them by, and a publisher that dies first leaves
 * them in place for the sweep.
 */
export async function takeOutbox(q: Queryable, ids: number[]): Promise<number[]> {
  if (ids.length === 0) return [];
  const r = await q.query<{ id: number }>(
    prepared(
      'take_outbox',
      `DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE id = ANY($1) FOR UPDATE SKIP LOCKED)
       RETURNING id`,
    ),
    [ids],
  );
  return r.rows.map((x) => x.id);
}

/**
 * Takes (deletes, locked until commit) up to `limit` outbox rows of one run that no publisher holds, for a
 * scheduler to publish in the same transaction: those of a run started by a process with no broker.
 */
export async function takeRunOutbox(q: Queryable, runId: string, limit: number): Promise<OutboxRow[]> {
  return (
    await q.query<OutboxRow>(
      `DELETE FROM outbox WHERE id IN (
         SELECT id FROM outbox WHERE payload->>'runId' = $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
       RETURNING id, queue, priority, payload`,
      [runId, limit],
    )
  ).rows;
}

/**
 * Removes rows their publisher has sent. Its commit does not wait for its flush: a crash that loses the
 * delete leaves the rows to the stale sweep, which sends them again (a duplicate message, which claims
 * ignore), and the commits of claims and results on the way to a task's start do not queue behind its flush.
 */
export async function deleteSentOutbox(q: Queryable, ids: number[]) {
  if (ids.length === 0) return;
  await q.query(
    prepared(
      'delete_sent_outbox',
      `WITH quick AS (SELECT set_config('synchronous_commit', 'off', true))
       DELETE FROM outbox WHERE id = ANY($1) AND EXISTS (SELECT FROM quick)`,
    ),
    [ids],
  );
}

export async function deleteOutbox(q: Queryable, ids: number[]) {
  if (ids.length > 0)
    await q.query(prepared('delete_outbox', `DELETE FROM outbox WHERE id = ANY($1)`), [ids]);
}

/** Whether any row is older than that: a cheap look, without a transaction, before lockStaleOutbox. */
export async function anyStaleOutbox(q: Queryable, olderThanMs: number): Promise<boolean> {
  const r = await q.query<{ any: boolean }>(
    prepared(
      'any_stale_outbox',
      `SELECT EXISTS (SELECT 1 FROM outbox WHERE created_at < now() - make_interval(secs => $1)) AS any`,
    ),
    [olderThanMs / 1000],
  );
  return r.rows[0]!.any;
}

/** Rows left behind by a publisher that died; locked so two schedulers do not both publish them. */
export async function lockStaleOutbox(
  q: Queryable,
  olderThanMs: number,
  limit: number,
): Promise<OutboxRow[]> {
  return (
    await q.query<OutboxRow>(
      `SELECT id, queue, priority, payload FROM outbox WHERE created_at < now() - make_interval(secs => $1)
       ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [olderThanMs / 1000, limit],
    )
  ).rows;
}
