/** A worker's claim on a try: a conditional update that only one worker can win (stale messages lose). */
import type { TaskMessage } from '../../core/states.js';
import type { Queryable } from './db.js';
import { rowsOf, shapedStatement, value } from './params.js';

export interface Claim {
  dagId: string;
  dagHash: string;
  conf: Record<string, unknown>;
  logicalDate: Date;
  failedTries: number;
  lostTries: number;
  /** Outputs of the upstream tasks asked for with the claim (successful ones); null when none were asked. */
  outputs: Map<string, unknown> | null;
}

/**
 * Claims one try for a worker. Null when the message is stale: another try, already claimed, or run over
 * (run callbacks, task ids starting with '@', run after their run has ended).
 */
export async function claimTask(
  q: Queryable,
  m: TaskMessage,
  workerId: string,
  token: string,
  /** The task's upstream ids when the worker already knows them: their outputs come with the claim. */
  upstream: string[] | null = null,
  /** The outbox row of a message this worker takes without publishing it (removed with the claim). */
  outboxId: number | null = null,
): Promise<Claim | null> {
  return (await claimTasks(q, workerId, [{ m, token, upstream, outboxId }]))[0]!;
}

export interface ClaimRequest {
  m: TaskMessage;
  token: string;
  upstream: string[] | null;
  outboxId: number | null;
}

/*
 * STATE_FROM_X: the worker's per-task statements (claims, results, successors) read the state they expect
 * from their unnest rows, not from a constant. Given `state = 'queued'`, Postgres may pick a partial index
 * on queued tasks (its predicate is then implied), and with statistics taken when few tasks were queued (or
 * none yet, on a new table) it walks every queued task of a 20,000-task backlog for each claim (7 ms a
 * statement in the B2 benchmark). A condition on a column of x proves no partial index's predicate, so the
 * primary key is the only index left to it (test/integration/plans.test.ts).
 */
/** A claim batch's parameters (see claimCtes); `cx`, as the result statement's rows are `x`. */
export const CLAIM_PARAMS = {
  cx: rowsOf<ClaimRequest>('cx', [
    ['run_id', 'text', (x) => x.m.runId],
    ['task_id', 'text', (x) => x.m.taskId],
    ['try_number', 'int', (x) => x.m.tryNumber],
    ['token', 'uuid', (x) => x.token],
    ['upstream', 'jsonb', (x) => (x.upstream ? JSON.stringify(x.upstream) : null)],
    ['outbox_id', 'bigint', (x) => x.outboxId],
    // The state a claim expects comes from cx, not a constant: see STATE_FROM_X.
    ['from_state', 'text', () => 'queued'],
  ]),
  workerId: value<string>(),
};

/** The claims' CTEs (cx, claimed, unsent), given the texts of CLAIM_PARAMS in the statement. */
export function claimCtes(sql: { cx: string; workerId: string }): string {
  return `cx AS (SELECT * FROM ${sql.cx}),
     claimed AS (
       UPDATE task_instances t SET state = 'running', claim_token = cx.token, worker_id = ${sql.workerId},
         started_at = now()
       FROM cx
       WHERE t.run_id = cx.run_id AND t.task_id = cx.task_id AND t.try_number = cx.try_number
         AND t.state = cx.from_state
         -- A scalar subquery on cx's run, not a join: joined on t.run_id, the run let Postgres look tasks up
         -- by run_id alone and filter on task_id (the run's tasks walked once per claim).
         AND ((SELECT r.state FROM dag_runs r WHERE r.run_id = cx.run_id) = 'running' OR starts_with(cx.task_id, '@'))
       RETURNING cx.token, t.run_id, t.failed_tries, t.lost_tries,
         CASE WHEN cx.upstream IS NOT NULL THEN
           (SELECT coalesce(jsonb_object_agg(u.task_id, u.output), '{}') FROM task_instances u
            -- = ANY(ARRAY(...)), not IN (SELECT ...): the latter was planned as a scan of the run's tasks.
            WHERE u.run_id = t.run_id AND u.task_id = ANY (ARRAY(SELECT jsonb_array_elements_text(cx.upstream)))
              AND u.state = 'success') END AS outputs),
     unsent AS (DELETE FROM outbox WHERE id IN (SELECT outbox_id FROM cx WHERE outbox_id IS NOT NULL))`;
}

/** The claims won, as one JSON array (a column of the statement that ends with claimCtes). */
export const CLAIMED_JSON = `(SELECT coalesce(jsonb_agg(jsonb_build_object('token', c.token, 'dagId', r.dag_id,
       'dagHash', r.dag_hash, 'conf', r.conf, 'logicalDate', r.logical_date, 'failedTries', c.failed_tries,
       'lostTries', c.lost_tries, 'outputs', c.outputs)), '[]')
     FROM claimed c JOIN dag_runs r ON r.run_id = c.run_id)`;

/** A claim as CLAIMED_JSON has it: JSON's date and object where Claim has a Date and a Map. */
export type ClaimedRow = Omit<Claim, 'logicalDate' | 'outputs'> & {
  token: string;
  logicalDate: string;
  outputs: Record<string, unknown> | null;
};

/** One answer per request, in order, from CLAIMED_JSON's rows. */
export function claimsOf(reqs: readonly ClaimRequest[], rows: readonly ClaimedRow[]): Array<Claim | null> {
  const byToken = new Map(rows.map((row) => [row.token, row]));
  return reqs.map((x) => {
    const row = byToken.get(x.token);
    if (!row) return null;
    return {
      dagId: row.dagId,
      dagHash: row.dagHash,
      conf: row.conf,
      logicalDate: new Date(row.logicalDate),
      failedTries: row.failedTries,
      lostTries: row.lostTries,
      outputs: row.outputs ? new Map(Object.entries(row.outputs)) : null,
    };
  });
}

const CLAIM_TASKS = shapedStatement(
  'claim_tasks',
  CLAIM_PARAMS,
  ['cx'],
  (sql) => `WITH ${claimCtes(sql)} SELECT ${CLAIMED_JSON} AS claimed`,
);

/** Claims several tries in one statement (see claimTask); one answer per request, in order. */
export async function claimTasks(
  q: Queryable,
  workerId: string,
  reqs: ClaimRequest[],
): Promise<Array<Claim | null>> {
  const { statement, values } = CLAIM_TASKS({ cx: reqs, workerId });
  const r = await q.query<{ claimed: ClaimedRow[] }>(statement, values);
  return claimsOf(reqs, r.rows[0]!.claimed);
}
