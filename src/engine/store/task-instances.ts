/** Queries about task instances and their tries. Every state change is conditional on the state it expects. */
import type { SerializedTask } from '../../core/dag-model.js';
import type { TaskMessage, TaskState } from '../../core/states.js';
import { prepared, type Queryable } from './db.js';
import { logColumns, type LogLine } from './logs.js';

export interface TaskInstanceRow {
  run_id: string;
  task_id: string;
  state: TaskState;
  queue: string;
  priority: number;
  try_number: number;
  failed_tries: number;
  lost_tries: number;
  /** When the current try's message last went to the broker (see migration 0005). */
  enqueued_at: Date | null;
  /** How often the current try's message was re-sent because it was lost. */
  requeues: number;
  claim_token: string | null;
  worker_id: string | null;
  next_retry_at: Date | null;
  queued_at: Date | null;
  started_at: Date | null;
  ended_at: Date | null;
  exit_code: number | null;
  output: unknown;
  error: string | null;
}

/** The fields the scheduler decides on; `output` only for the branch tasks asked for. */
export type TaskInstanceBrief = Pick<
  TaskInstanceRow,
  'run_id' | 'task_id' | 'state' | 'try_number' | 'failed_tries' | 'next_retry_at' | 'output'
>;

export interface OutboxRow {
  id: number;
  queue: string;
  priority: number;
  payload: TaskMessage;
}

export async function createTaskInstances(q: Queryable, runId: string, tasks: SerializedTask[]) {
  await createTaskInstancesOfRuns(q, [{ runId, tasks }]);
}

/** Creates the task instances of several runs in one statement (a scheduler starting many small runs). */
export async function createTaskInstancesOfRuns(
  q: Queryable,
  runs: Array<{ runId: string; tasks: SerializedTask[] }>,
) {
  const all = runs.flatMap((r) => r.tasks.map((t) => ({ runId: r.runId, t })));
  if (all.length === 0) return;
  await q.query(
    `INSERT INTO task_instances (run_id, task_id, state, queue, priority, pool, pool_slots)
     SELECT t.run_id, t.task_id, 'none', t.queue, t.priority, t.pool, t.pool_slots
     FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::int[])
       AS t(run_id, task_id, queue, priority, pool, pool_slots)
     ON CONFLICT DO NOTHING`,
    [
      all.map((x) => x.runId),
      all.map((x) => x.t.taskId),
      all.map((x) => x.t.queue),
      all.map((x) => x.t.priorityWeight),
      all.map((x) => x.t.pool ?? null),
      all.map((x) => x.t.poolSlots ?? 1),
    ],
  );
}

/** Briefs of every task of the runs; outputs are read only for `withOutput` tasks (branch choices). */
export async function briefsForRuns(
  q: Queryable,
  runIds: string[],
  withOutput: string[] = [],
): Promise<TaskInstanceBrief[]> {
  return (
    await q.query<TaskInstanceBrief>(
      `SELECT run_id, task_id, state, try_number, failed_tries, next_retry_at,
              CASE WHEN task_id = ANY($2) THEN output END AS output
       FROM task_instances WHERE run_id = ANY($1)`,
      [runIds, withOutput],
    )
  ).rows;
}

export interface QueueRequest {
  runId: string;
  taskId: string;
  from: 'none' | 'up_for_retry';
}

/**
 * Free task slots of those DAGs that set max_active_tasks: the limit minus their task instances queued
 * or running, across all runs. The DAG rows are locked (in id order) until the transaction ends, so two
 * schedulers cannot hand out the same slot. DAGs without a limit are absent from the result.
 */
export async function lockTaskSlots(q: Queryable, dagIds: string[]): Promise<Map<string, number>> {
  if (dagIds.length === 0) return new Map();
  const limited = (
    await q.query<{ dag_id: string; max_active_tasks: number }>(
      `SELECT dag_id, max_active_tasks FROM dags
       WHERE dag_id = ANY($1) AND max_active_tasks IS NOT NULL ORDER BY dag_id FOR UPDATE`,
      [dagIds],
    )
  ).rows;
  if (limited.length === 0) return new Map();
  // Counted after the lock, in a statement of its own: it sees what the previous holder committed.
  const active = new Map(
    (
      await q.query<{ dag_id: string; n: number }>(
        `SELECT r.dag_id, count(*)::int AS n FROM task_instances t JOIN dag_runs r ON r.run_id = t.run_id
         WHERE r.dag_id = ANY($1) AND t.state IN ('queued', 'running') GROUP BY r.dag_id`,
        [limited.map((d) => d.dag_id)],
      )
    ).rows.map((r) => [r.dag_id, r.n]),
  );
  return new Map(
    limited.map((d) => [d.dag_id, Math.max(0, d.max_active_tasks - (active.get(d.dag_id) ?? 0))]),
  );
}

/** Moves tasks to 'queued' (next try) and writes their messages to the outbox, in one statement. */
export async function queueTasks(q: Queryable, reqs: QueueRequest[]): Promise<OutboxRow[]> {
  if (reqs.length === 0) return [];
  return (
    await q.query<OutboxRow>(
      prepared(
        'queue_tasks',
        `WITH q AS (
         UPDATE task_instances t SET state = 'queued', try_number = t.try_number + 1, queued_at = now(),
           enqueued_at = now(), requeues = 0, next_retry_at = NULL, claim_token = NULL, worker_id = NULL, started_at = NULL, ended_at = NULL,
           exit_code = NULL, error = NULL
         FROM unnest($1::text[], $2::text[], $3::text[]) AS x(run_id, task_id, from_state)
         WHERE t.run_id = x.run_id AND t.task_id = x.task_id AND t.state = x.from_state
         RETURNING t.run_id, t.task_id, t.try_number, t.queue, t.priority)
       INSERT INTO outbox (queue, priority, payload)
       SELECT queue, priority, jsonb_build_object('runId', run_id, 'taskId', task_id, 'tryNumber', try_number)
       FROM q RETURNING id, queue, priority, payload`,
      ),
      [reqs.map((r) => r.runId), reqs.map((r) => r.taskId), reqs.map((r) => r.from)],
    )
  ).rows;
}

/** Sets tasks that never ran to skipped / upstream_failed. */
export async function settleUnrun(
  q: Queryable,
  items: Array<{ runId: string; taskId: string; state: 'skipped' | 'upstream_failed' }>,
) {
  if (items.length === 0) return;
  await q.query(
    `UPDATE task_instances t SET state = x.state, ended_at = now()
     FROM unnest($1::text[], $2::text[], $3::text[]) AS x(run_id, task_id, state)
     WHERE t.run_id = x.run_id AND t.task_id = x.task_id AND t.state = 'none'`,
    [items.map((i) => i.runId), items.map((i) => i.taskId), items.map((i) => i.state)],
  );
}

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
 * Queues a run callback (@onRunSuccess / @onRunFailure) of a run that has just ended, with its message in
 * the outbox: a task instance of its own, so a worker runs it and its log and outcome are kept like a task's.
 * Call in the transaction that ends the run.
 */
export async function queueRunCallback(
  q: Queryable,
  runId: string,
  taskId: string,
  queue: string,
): Promise<OutboxRow[]> {
  return (
    await q.query<OutboxRow>(
      `WITH ti AS (
         INSERT INTO task_instances (run_id, task_id, state, queue, priority, try_number, queued_at)
         VALUES ($1, $2, 'queued', $3, 1, 1, now()) ON CONFLICT DO NOTHING
         RETURNING run_id, task_id, try_number, queue, priority)
       INSERT INTO outbox (queue, priority, payload)
       SELECT queue, priority, jsonb_build_object('runId', run_id, 'taskId', task_id, 'tryNumber', try_number)
       FROM ti RETURNING id, queue, priority, payload`,
      [runId, taskId, queue],
    )
  ).rows;
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
  }>(
    // The state a claim expects comes from x, not a constant: see STATE_FROM_X.
    prepared(
      'claim_tasks',
      `WITH x AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::uuid[], $5::jsonb[], $6::bigint[], $8::text[])
         AS x(run_id, task_id, try_number, token, upstream, outbox_id, from_state)),
     claimed AS (
       UPDATE task_instances t SET state = 'running', claim_token = x.token, worker_id = $7, started_at = now()
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
    ),
    [
      reqs.map((x) => x.m.runId),
      reqs.map((x) => x.m.taskId),
      reqs.map((x) => x.m.tryNumber),
      reqs.map((x) => x.token),
      reqs.map((x) => (x.upstream ? JSON.stringify(x.upstream) : null)),
      reqs.map((x) => x.outboxId),
      workerId,
      reqs.map(() => 'queued'),
    ],
  );
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

export interface TryResult {
  state: 'success' | 'failed' | 'up_for_retry';
  exitCode: number | null;
  output: unknown;
  error: string | null;
  /**
   * For up_for_retry: how long after the result is stored the next try may start. The database adds it
   * to its own clock (the clock ended_at comes from), so worker clocks never shift a retry.
   */
  retryInMs: number | null;
  /** True when the try counts against the task's retries (its own failure, not a lost worker). */
  countsAsFailure: boolean;
  lost?: boolean;
}

/**
 * Records the end of a try, fenced by the claim token: a worker that lost its claim changes nothing.
 * Records the try in task_tries and wakes the schedulers, in the same statement. Returns false when fenced out.
 */
export async function finishTry(
  q: Queryable,
  m: TaskMessage,
  token: string,
  res: TryResult,
  channel: string,
): Promise<boolean> {
  return storeTryResult(q, m, token, res, { channel, notify: true });
}

export interface StoreResultOptions {
  channel: string;
  /**
   * Wake the schedulers to look at the run. A worker that queues the next tasks itself does not: a NOTIFY
   * serialises commits in Postgres, so one per task would cap throughput (see endRunsIfOver).
   */
  notify: boolean;
  /** The try's last log lines, stored in the same statement. */
  logs?: LogLine[];
}

/** finishTry with its options; false when fenced out. */
export async function storeTryResult(
  q: Queryable,
  m: TaskMessage,
  token: string,
  res: TryResult,
  o: StoreResultOptions,
): Promise<boolean> {
  const r = await storeTryResults(q, [{ m, token, res, notify: o.notify, logs: o.logs ?? [] }], o.channel);
  return r[0]!.stored;
}

export interface ResultToStore {
  m: TaskMessage;
  token: string;
  res: TryResult;
  notify: boolean;
  logs: LogLine[];
  /**
   * Tasks to start if this result is a success: each waits for this task alone (see the worker's 'direct'
   * successor plan). With a token, the task is claimed for the storing worker (it runs it next); without,
   * it is queued with its message in the outbox.
   */
  successors?: Array<{ taskId: string; token: string | null }>;
}

/** A successor a stored success started (see ResultToStore.successors). */
export interface StartedSuccessor {
  taskId: string;
  tryNumber: number;
  /** Set when it was claimed for the storing worker. */
  token: string | null;
  failedTries: number;
  lostTries: number;
  /** Its message, when it was queued instead. */
  outbox: OutboxRow | null;
  /** When claimed: the stored output of the result that started it (its only upstream task). */
  upstreamOutput: unknown;
}

export interface StoredResult {
  /** False when fenced out: the claim was lost, another try owns the task. */
  stored: boolean;
  /** The successors it started: fewer than asked when some were no longer waiting or the run is over. */
  started: StartedSuccessor[];
}

/**
 * Stores several results in one statement (see finishTry and StoreResultOptions): each fenced by its claim
 * token, its try recorded, its log lines written; the schedulers are woken once per run that asked for it.
 * A success starts its successors in the same statement (and so in the same commit as the result): a link
 * of a chain is one statement and one flush to disk.
 */
export async function storeTryResults(
  q: Queryable,
  items: ResultToStore[],
  channel: string,
  /** The worker that claims successors with a token. */
  workerId: string | null = null,
): Promise<StoredResult[]> {
  const logs = logColumns(items.flatMap((x) => x.logs));
  const next = items.flatMap((x) => (x.successors ?? []).map((s) => ({ parent: x, ...s })));
  const r = await q.query<{
    stored: string[];
    started: Array<{
      parent: string;
      taskId: string;
      tryNumber: number;
      token: string | null;
      failedTries: number;
      lostTries: number;
      upstreamOutput: unknown;
    }>;
    outbox: OutboxRow[];
  }>(
    prepared(
      'store_try_results',
      `WITH x AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::uuid[], $5::text[], $6::int[], $7::jsonb[],
                            $8::text[], $9::float8[], $10::int[], $11::int[], $12::bool[], $20::text[])
         AS x(run_id, task_id, try_number, token, state, exit_code, output, error, retry_in_ms, failed_inc,
              lost_inc, notify, from_state)),
     upd AS (
       UPDATE task_instances t SET state = x.state, ended_at = now(), exit_code = x.exit_code,
         output = x.output, error = x.error,
         next_retry_at = now() + make_interval(secs => x.retry_in_ms / 1000),
         failed_tries = t.failed_tries + x.failed_inc, lost_tries = t.lost_tries + x.lost_inc
       FROM x
       WHERE t.run_id = x.run_id AND t.task_id = x.task_id AND t.try_number = x.try_number
         AND t.claim_token = x.token AND t.state = x.from_state
       RETURNING t.run_id, t.task_id, t.try_number, t.state, t.worker_id, t.started_at, t.ended_at,
         t.exit_code, t.error, t.output, x.notify, x.token),
     tries AS (
       INSERT INTO task_tries (run_id, task_id, try_number, state, worker_id, started_at, ended_at, exit_code, error)
       SELECT run_id, task_id, try_number, CASE WHEN state = 'success' THEN 'success' ELSE 'failed' END,
              worker_id, started_at, ended_at, exit_code, error FROM upd
       ON CONFLICT DO NOTHING RETURNING run_id),
     logs AS (
       INSERT INTO task_logs (run_id, task_id, try_number, stream, ts, line)
       SELECT * FROM unnest($13::text[], $14::text[], $15::int[], $16::text[], $17::timestamptz[], $18::text[])),
     nx AS (
       SELECT * FROM unnest($21::uuid[], $22::text[], $23::uuid[], $24::text[])
         AS nx(parent, task_id, token, from_state)),
     -- Successors of the successes stored above (their rows are 'none', never one of upd's), while the run
     -- runs: conditional on their state, so a cancel or a scheduler that got there first wins.
     started AS (
       UPDATE task_instances t SET
         state = CASE WHEN nx.token IS NULL THEN 'queued' ELSE 'running' END,
         try_number = t.try_number + 1, queued_at = now(), enqueued_at = now(), requeues = 0,
         next_retry_at = NULL, claim_token = nx.token,
         worker_id = CASE WHEN nx.token IS NULL THEN NULL ELSE $25 END,
         started_at = CASE WHEN nx.token IS NULL THEN NULL ELSE now() END,
         ended_at = NULL, exit_code = NULL, error = NULL
       FROM nx JOIN upd ON upd.token = nx.parent AND upd.state = 'success'
       WHERE t.run_id = upd.run_id AND t.task_id = nx.task_id AND t.state = nx.from_state
         AND (SELECT r.state FROM dag_runs r WHERE r.run_id = upd.run_id) = 'running'
       RETURNING t.run_id, t.task_id, t.try_number, t.queue, t.priority, t.failed_tries, t.lost_tries,
         nx.token, nx.parent, CASE WHEN nx.token IS NOT NULL THEN upd.output END AS upstream_output),
     ob AS (
       INSERT INTO outbox (queue, priority, payload)
       SELECT queue, priority, jsonb_build_object('runId', run_id, 'taskId', task_id, 'tryNumber', try_number)
       FROM started WHERE token IS NULL RETURNING id, queue, priority, payload)
     SELECT (SELECT coalesce(array_agg(token::text), '{}') FROM upd) AS stored,
       (SELECT count(pg_notify($19, run_id)) FROM (SELECT DISTINCT run_id FROM upd WHERE notify) n) AS notified,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('parent', parent, 'taskId', task_id,
          'tryNumber', try_number, 'token', token, 'failedTries', failed_tries, 'lostTries', lost_tries,
          'upstreamOutput', upstream_output)), '[]')
        FROM started) AS started,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'queue', queue, 'priority', priority,
          'payload', payload)), '[]') FROM ob) AS outbox`,
    ),
    [
      items.map((x) => x.m.runId),
      items.map((x) => x.m.taskId),
      items.map((x) => x.m.tryNumber),
      items.map((x) => x.token),
      items.map((x) => x.res.state),
      items.map((x) => x.res.exitCode),
      items.map((x) => (x.res.output === undefined ? null : JSON.stringify(x.res.output))),
      items.map((x) => x.res.error),
      items.map((x) => x.res.retryInMs),
      items.map((x) => (x.res.countsAsFailure ? 1 : 0)),
      items.map((x) => (x.res.lost ? 1 : 0)),
      items.map((x) => x.notify),
      ...logs,
      channel,
      items.map(() => 'running'),
      next.map((n) => n.parent.token),
      next.map((n) => n.taskId),
      next.map((n) => n.token),
      next.map(() => 'none'),
      workerId,
    ],
  );
  const row = r.rows[0]!;
  const stored = new Set(row.stored);
  // A queued successor's message, by task: within one run a task id is unique, and each parent is of one run.
  const messages = new Map(row.outbox.map((o) => [`${o.payload.runId}\0${o.payload.taskId}`, o]));
  return items.map((x) => ({
    stored: stored.has(x.token),
    started: row.started
      .filter((s) => s.parent === x.token)
      .map((s) => ({
        taskId: s.taskId,
        tryNumber: s.tryNumber,
        token: s.token,
        failedTries: s.failedTries,
        lostTries: s.lostTries,
        outbox: s.token ? null : (messages.get(`${x.m.runId}\0${s.taskId}`) ?? null),
        upstreamOutput: s.upstreamOutput ?? null,
      })),
  }));
}

/** The states of some tasks of a run. */
export async function statesOf(
  q: Queryable,
  runId: string,
  taskIds: string[],
): Promise<Map<string, TaskState>> {
  const r = await q.query<{ task_id: string; state: TaskState }>(
    prepared(
      'states_of',
      `SELECT task_id, state FROM task_instances WHERE run_id = $1 AND task_id = ANY($2)`,
    ),
    [runId, taskIds],
  );
  return new Map(r.rows.map((x) => [x.task_id, x.state]));
}

export interface RunningTask extends TaskMessage {
  token: string;
  dagHash: string;
  failedTries: number;
  lostTries: number;
  workerId: string | null;
}

/** Running tasks whose worker stopped heartbeating (or stopped): their tries are lost. */
export async function findZombies(q: Queryable, thresholdMs: number): Promise<RunningTask[]> {
  const r = await q.query<{
    run_id: string;
    task_id: string;
    try_number: number;
    claim_token: string;
    dag_hash: string;
    failed_tries: number;
    lost_tries: number;
    worker_id: string | null;
  }>(
    `SELECT t.run_id, t.task_id, t.try_number, t.claim_token, r.dag_hash, t.failed_tries, t.lost_tries, t.worker_id
     FROM task_instances t JOIN dag_runs r USING (run_id) LEFT JOIN workers w USING (worker_id)
     WHERE t.state = 'running'
       AND (w.worker_id IS NULL OR w.stopped_at IS NOT NULL OR w.heartbeat_at < now() - make_interval(secs => $1))
     LIMIT 500`,
    [thresholdMs / 1000],
  );
  return r.rows.map((x) => ({
    runId: x.run_id,
    taskId: x.task_id,
    tryNumber: x.try_number,
    token: x.claim_token,
    dagHash: x.dag_hash,
    failedTries: x.failed_tries,
    lostTries: x.lost_tries,
    workerId: x.worker_id,
  }));
}

export async function listTaskInstances(q: Queryable, runId: string): Promise<TaskInstanceRow[]> {
  return (
    await q.query<TaskInstanceRow>(
      `SELECT * FROM task_instances WHERE run_id = $1 ORDER BY started_at NULLS LAST, task_id`,
      [runId],
    )
  ).rows;
}

export async function getTaskInstance(q: Queryable, runId: string, taskId: string) {
  return (
    await q.query<TaskInstanceRow>(`SELECT * FROM task_instances WHERE run_id = $1 AND task_id = $2`, [
      runId,
      taskId,
    ])
  ).rows[0];
}

export interface TryRow {
  run_id: string;
  task_id: string;
  try_number: number;
  state: string;
  worker_id: string | null;
  started_at: Date | null;
  ended_at: Date | null;
  exit_code: number | null;
  error: string | null;
}

export async function listTries(q: Queryable, runId: string, taskId?: string): Promise<TryRow[]> {
  return (
    await q.query<TryRow>(
      `SELECT * FROM task_tries WHERE run_id = $1 AND ($2::text IS NULL OR task_id = $2) ORDER BY task_id, try_number`,
      [runId, taskId ?? null],
    )
  ).rows;
}

/** Outputs of the given tasks of a run (successful ones only). */
export async function outputsOf(
  q: Queryable,
  runId: string,
  taskIds: string[],
): Promise<Map<string, unknown>> {
  if (taskIds.length === 0) return new Map();
  const r = await q.query<{ task_id: string; output: unknown }>(
    `SELECT task_id, output FROM task_instances WHERE run_id = $1 AND task_id = ANY($2) AND state = 'success'`,
    [runId, taskIds],
  );
  return new Map(r.rows.map((x) => [x.task_id, x.output]));
}

export interface StaleQueued extends TaskMessage {
  queue: string;
}

/**
 * Queued tries nobody claimed whose message went out more than `olderThanMs` ago and that have no
 * message waiting in the outbox: candidates for a lost message (the scheduler also checks the broker).
 */
export async function findStaleQueued(
  q: Queryable,
  olderThanMs: number,
  limit: number,
): Promise<StaleQueued[]> {
  const r = await q.query<{ run_id: string; task_id: string; try_number: number; queue: string }>(
    `SELECT t.run_id, t.task_id, t.try_number, t.queue FROM task_instances t
     WHERE t.state = 'queued' AND t.claim_token IS NULL
       AND coalesce(t.enqueued_at, t.queued_at) < now() - make_interval(secs => $1)
       AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.payload->>'runId' = t.run_id
                         AND o.payload->>'taskId' = t.task_id AND (o.payload->>'tryNumber')::int = t.try_number)
     ORDER BY coalesce(t.enqueued_at, t.queued_at) LIMIT $2`,
    [olderThanMs / 1000, limit],
  );
  return r.rows.map((x) => ({ runId: x.run_id, taskId: x.task_id, tryNumber: x.try_number, queue: x.queue }));
}

/**
 * Writes a new message to the outbox for each try that is still queued, unclaimed and stale, and marks it
 * sent now. Conditional, so two schedulers re-sending at once write one message, not two.
 */
export async function requeueStale(
  q: Queryable,
  items: TaskMessage[],
  olderThanMs: number,
): Promise<OutboxRow[]> {
  if (items.length === 0) return [];
  return (
    await q.query<OutboxRow>(
      `WITH r AS (
         UPDATE task_instances t SET enqueued_at = now(), requeues = t.requeues + 1
         FROM unnest($1::text[], $2::text[], $3::int[]) AS x(run_id, task_id, try_number)
         WHERE t.run_id = x.run_id AND t.task_id = x.task_id AND t.try_number = x.try_number
           AND t.state = 'queued' AND t.claim_token IS NULL
           AND coalesce(t.enqueued_at, t.queued_at) < now() - make_interval(secs => $4)
         RETURNING t.run_id, t.task_id, t.try_number, t.queue, t.priority)
       INSERT INTO outbox (queue, priority, payload)
       SELECT queue, priority, jsonb_build_object('runId', run_id, 'taskId', task_id, 'tryNumber', try_number)
       FROM r RETURNING id, queue, priority, payload`,
      [
        items.map((i) => i.runId),
        items.map((i) => i.taskId),
        items.map((i) => i.tryNumber),
        olderThanMs / 1000,
      ],
    )
  ).rows;
}

/**
 * Tries this worker holds in the database but does not know about: a claim that committed while its
 * answer was lost with the connection. Tokens the worker is still claiming count as known.
 */
export async function orphanedClaims(
  q: Queryable,
  workerId: string,
  knownTokens: string[],
): Promise<Array<TaskMessage & { token: string }>> {
  const r = await q.query<{ run_id: string; task_id: string; try_number: number; claim_token: string }>(
    `SELECT run_id, task_id, try_number, claim_token FROM task_instances
     WHERE worker_id = $1 AND state = 'running' AND NOT (claim_token = ANY($2::uuid[]))`,
    [workerId, knownTokens],
  );
  return r.rows.map((x) => ({
    runId: x.run_id,
    taskId: x.task_id,
    tryNumber: x.try_number,
    token: x.claim_token,
  }));
}

/** How many task instances of each queue are running: the work the autoscaler must not take workers from. */
export async function runningByQueue(q: Queryable): Promise<Map<string, number>> {
  const r = await q.query<{ queue: string; n: number }>(
    `SELECT queue, count(*)::int AS n FROM task_instances WHERE state = 'running' GROUP BY queue`,
  );
  return new Map(r.rows.map((x) => [x.queue, x.n]));
}

/** How many task instances wait in each queue (state 'queued'): what `airtasks status` compares with its workers. */
export async function queuedByQueue(q: Queryable): Promise<Map<string, number>> {
  const r = await q.query<{ queue: string; n: number }>(
    `SELECT queue, count(*)::int AS n FROM task_instances WHERE state = 'queued' GROUP BY queue`,
  );
  return new Map(r.rows.map((x) => [x.queue, x.n]));
}

/**
 * Brings the planner's statistics of task_instances and dag_runs up to date after `created` new task
 * instances, when they are many against what the statistics know (a new installation, or a run of 20,000
 * tasks on a small table). The prepared statements' plans are made once per connection (see Prepared): one
 * made while the table was nearly empty scans it whole, and stays until the statistics change. Autovacuum
 * gets there too, but only within a minute or so; ANALYZE also invalidates those plans at once. Returns
 * whether it ran.
 */
export async function refreshStatisticsAfterGrowth(q: Queryable, created: number): Promise<boolean> {
  if (created < 1000) return false;
  const r = await q.query<{ known: number }>(
    `SELECT greatest(reltuples, 0)::float8 AS known FROM pg_class WHERE oid = 'task_instances'::regclass`,
  );
  if (created < 0.2 * (r.rows[0]?.known ?? 0)) return false;
  await q.query('ANALYZE task_instances, dag_runs');
  return true;
}
