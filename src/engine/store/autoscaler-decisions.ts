/** The autoscaler's recorded decisions (migration 0013): written by `airtasks autoscale`, read by the dashboard. */
import type { Queryable } from './db.js';

export interface DecisionRecord {
  at: Date;
  stack: string;
  queue: string;
  service: string;
  action: string;
  current: number | null;
  wanted: number | null;
  target: number | null;
  scaled: boolean;
  inputs: Record<string, unknown>;
  nodes: Record<string, unknown> | null;
  reason: string;
  error: string | null;
}

export interface StoredDecision extends DecisionRecord {
  id: number;
}

export interface RecordBounds {
  /** Rows kept per stack, this one included. */
  keep: number;
  /** Rows older than this (before `at`) are removed. */
  maxAgeMs: number;
}

/**
 * Records a decision and prunes the stack's rows, in one statement. `always` false (a hold, a failed read)
 * records it only when the queue's previous row differs in action, service, sizes or error: an idle autoscaler writes
 * nothing, across its restarts too. Prunes only when it wrote, keeping the newest `keep` rows.
 */
export async function recordDecision(
  q: Queryable,
  d: DecisionRecord,
  always: boolean,
  bounds: RecordBounds,
): Promise<{ recorded: boolean; pruned: number }> {
  const r = await q.query<{ recorded: boolean; pruned: number }>(
    `WITH prev AS (
       SELECT action, service, current, wanted, target, error, reason FROM autoscaler_decisions
        WHERE stack = $2 AND queue = $3 ORDER BY decision_id DESC LIMIT 1
     ), ins AS (
       INSERT INTO autoscaler_decisions
         (decided_at, stack, queue, service, action, current, wanted, target, scaled, inputs, nodes, reason, error)
       SELECT $1::timestamptz, $2::text, $3::text, $4::text, $5::text, $6::int, $7::int, $8::int, $9::boolean,
              $10::jsonb, $11::jsonb, $12::text, $13::text
        WHERE $14::boolean OR NOT EXISTS (
          SELECT 1 FROM prev WHERE prev.action = $5::text AND prev.service = $4::text
             AND prev.current IS NOT DISTINCT FROM $6::int AND prev.wanted IS NOT DISTINCT FROM $7::int
             AND prev.target IS NOT DISTINCT FROM $8::int AND prev.error IS NOT DISTINCT FROM $13::text
             -- a failed read says why in its reason: the same failure again is not news, another one is
             AND (prev.action <> 'read-failed' OR prev.reason = $12::text))
       RETURNING decision_id
     ), pruned AS (
       -- The statement's snapshot does not hold the new row: of the older ones, keep the newest keep - 1.
       DELETE FROM autoscaler_decisions d
        WHERE EXISTS (SELECT 1 FROM ins) AND d.stack = $2::text
          AND (d.decided_at < $1::timestamptz - $16::float8 * interval '1 millisecond'
               OR d.decision_id <= (SELECT decision_id FROM autoscaler_decisions WHERE stack = $2::text
                                     ORDER BY decision_id DESC OFFSET $15::int - 1 LIMIT 1))
       RETURNING 1
     )
     SELECT EXISTS (SELECT 1 FROM ins) AS recorded, (SELECT count(*) FROM pruned)::int AS pruned`,
    [
      d.at,
      d.stack,
      d.queue,
      d.service,
      d.action,
      d.current,
      d.wanted,
      d.target,
      d.scaled,
      JSON.stringify(d.inputs),
      d.nodes === null ? null : JSON.stringify(d.nodes),
      d.reason,
      d.error,
      always,
      Math.max(1, bounds.keep),
      bounds.maxAgeMs,
    ],
  );
  return r.rows[0]!;
}

/** A stack's newest decisions, newest first. */
export async function recentDecisions(q: Queryable, stack: string, limit: number): Promise<StoredDecision[]> {
  // The columns are the record's fields, but for the id and the time.
  const r = await q.query<Omit<DecisionRecord, 'at'> & { decision_id: number; decided_at: Date }>(
    `SELECT decision_id, decided_at, stack, queue, service, action, current, wanted, target, scaled, inputs,
            nodes, reason, error
       FROM autoscaler_decisions WHERE stack = $1 ORDER BY decision_id DESC LIMIT $2`,
    [stack, limit],
  );
  return r.rows.map(({ decision_id, decided_at, ...rest }) => ({ id: decision_id, at: decided_at, ...rest }));
}
