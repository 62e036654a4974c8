/** A worker's claim on a try: a conditional update that only one worker can win (stale messages lose). */
import type { TaskMessage } from '../../core/states.js';
import { prepared, type Queryable } from './db.js';
import { rowsOf, statementParams, value } from './params.js';

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
const CLAIM = statementParams({
  x: rowsOf<ClaimRequest>('x', [
    ['run_id', 'text', (x) => x.m.runId],
    ['task_id', 'text', (x) => x.m.taskId],
    ['try_number', 'int', (x) => x.m.tryNumber],
    ['token', 'uuid', (x) => x.token],
    ['upstream', 'jsonb', (x) => (x.upstream ? JSON.stringify(x.upstream) : null)],
    ['outbox_id', 'bigint', (x) => x.outboxId],
    // The state a claim expects comes from x, not a constant: see STATE_FROM_X.
    ['from_state', 'text', () => 'queued'],
  ]),
  workerId: value<string>(),
});

const CLAIM_TASKS = prepared(
  'claim_tasks',
  `WITH x AS (SELECT * FROM ${CLAIM.sql.x}),
     claimed AS (
       UPDATE task_instances t SET state = 'running', claim_token = x.token, worker_id = ${CLAIM.sql.workerId},
         started_at = now()
       FROM x
       WHERE t.run_id = x.run_id AND t.task_id = x.task_id AND t.try_number = x.try_number
         AND t.state = x.from_state
         -- A scalar subquery on x's run, not a join: joined on t.run_id, the run let Postgres look tasks up
         -- by run_id alone and filter on task_id (the run's tasks walked once per claim).
         AND ((SELECT r.state FROM dag_runs r WHERE r.run_id = x.run_id) = 'running' OR starts_with(x.task_id, '@'))
       RETURNING x.token, t.run_id, t.failed_tries, t.lost_tries,
         CASE WHEN x.upstream IS NOT NULL THEN
           (SELECT coalesce(jsonb_object_agg(u.task_id, u.output), '{}') FROM task_instances u
            -- = ANY(ARRAY(...)), not IN (SELECT ...): the latter was planned as a scan of the run's tasks.
            WHERE u.run_id = t.run_id AND u.task_id = ANY (ARRAY(SELECT jsonb_array_elements_text(x.upstream)))
              AND u.state = 'success') END AS outputs),
     unsent AS (DELETE FROM outbox WHERE id IN (SELECT outbox_id FROM x WHERE outbox_id IS NOT NULL))
     SELECT c.token, r.dag_id, r.dag_hash, r.conf, r.logical_date, c.failed_tries, c.lost_tries, c.outputs
     FROM claimed c JOIN dag_runs r ON r.run_id = c.run_id`,
);

/** Claims several tries in one statement (see claimTask); one answer per request, in order. */
export async function claimTasks(
  q: Queryable,
  workerId: string,
  reqs: ClaimRequest[],
): Promise<Array<Claim | null>> {
  const r = await q.query<{
    token: string;
    dag_id: string;
    dag_hash: string;
    conf: Record<string, unknown>;
    logical_date: Date;
    failed_tries: number;
    lost_tries: number;
    outputs: Record<string, unknown> | null;
  }>(CLAIM_TASKS, CLAIM.values({ x: reqs, workerId }));
  const byToken = new Map(r.rows.map((row) => [row.token, row]));
  return reqs.map((x) => {
    const row = byToken.get(x.token);
    if (!row) return null;
    return {
      dagId: row.dag_id,
      dagHash: row.dag_hash,
      conf: row.conf,
      logicalDate: row.logical_date,
      failedTries: row.failed_tries,
      lostTries: row.lost_tries,
      outputs: row.outputs ? new Map(Object.entries(row.outputs)) : null,
    };
  });
}
