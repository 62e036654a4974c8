/**
 * The end of a try, stored fenced by its claim token (a worker that lost its claim changes nothing), with the
 * try's record, its last log lines and the successors a success starts, in one statement.
 */
import type { TaskMessage } from '../../core/states.js';
import type { Queryable } from './db.js';
import { columnArrays, rowsOf, shapedStatement, value } from './params.js';
import { logColumns, type LogLine } from './logs.js';
import type { OutboxRow } from './outbox.js';

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

/** A successor to start (ResultToStore.successors), with the token of the result that starts it. */
interface SuccessorRow {
  parent: string;
  taskId: string;
  token: string | null;
}

/** A result batch's parameters (see storeCtes). */
export const STORE_PARAMS = {
  x: rowsOf<ResultToStore>('x', [
    ['run_id', 'text', (x) => x.m.runId],
    ['task_id', 'text', (x) => x.m.taskId],
    ['try_number', 'int', (x) => x.m.tryNumber],
    ['token', 'uuid', (x) => x.token],
    ['state', 'text', (x) => x.res.state],
    ['exit_code', 'int', (x) => x.res.exitCode],
    ['output', 'jsonb', (x) => (x.res.output === undefined ? null : JSON.stringify(x.res.output))],
    ['error', 'text', (x) => x.res.error],
    ['retry_in_ms', 'float8', (x) => x.res.retryInMs],
    ['failed_inc', 'int', (x) => (x.res.countsAsFailure ? 1 : 0)],
    ['lost_inc', 'int', (x) => (x.res.lost ? 1 : 0)],
    ['notify', 'bool', (x) => x.notify],
    // The state a result expects comes from x, not a constant: see STATE_FROM_X (claims.ts).
    ['from_state', 'text', () => 'running'],
  ]),
  logs: columnArrays(['text', 'text', 'int', 'text', 'timestamptz', 'text']),
  channel: value<string>(),
  nx: rowsOf<SuccessorRow>('nx', [
    ['parent', 'uuid', (n) => n.parent],
    ['task_id', 'text', (n) => n.taskId],
    ['token', 'uuid', (n) => n.token],
    ['from_state', 'text', () => 'none'],
  ]),
  workerId: value<string | null>(),
};

type StoreSql = { readonly [K in keyof typeof STORE_PARAMS]: string };

/** The results' CTEs (x, upd, tries, logs, nx, started, ob), given the texts of STORE_PARAMS. */
export function storeCtes(sql: StoreSql): string {
  return `x AS (SELECT * FROM ${sql.x}),
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
       SELECT * FROM ${sql.logs}),
     nx AS (SELECT * FROM ${sql.nx}),
     -- Successors of the successes stored above (their rows are 'none', never one of upd's), while the run
     -- runs: conditional on their state, so a cancel or a scheduler that got there first wins.
     started AS (
       UPDATE task_instances t SET
         state = CASE WHEN nx.token IS NULL THEN 'queued' ELSE 'running' END,
         try_number = t.try_number + 1, queued_at = now(), enqueued_at = now(), requeues = 0,
         next_retry_at = NULL, claim_token = nx.token,
         worker_id = CASE WHEN nx.token IS NULL THEN NULL ELSE ${sql.workerId} END,
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
       FROM started WHERE token IS NULL RETURNING id, queue, priority, payload)`;
}

/** The results' columns (stored, notified, started, outbox) of a statement that ends with storeCtes. */
export function storeColumns(sql: StoreSql): string {
  return `(SELECT coalesce(array_agg(token::text), '{}') FROM upd) AS stored,
       (SELECT count(pg_notify(${sql.channel}, run_id)) FROM (SELECT DISTINCT run_id FROM upd WHERE notify) n) AS notified,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('parent', parent, 'taskId', task_id,
          'tryNumber', try_number, 'token', token, 'failedTries', failed_tries, 'lostTries', lost_tries,
          'upstreamOutput', upstream_output)), '[]')
        FROM started) AS started,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'queue', queue, 'priority', priority,
          'payload', payload)), '[]') FROM ob) AS outbox`;
}

const STORE_TRY_RESULTS = shapedStatement(
  'store_try_results',
  STORE_PARAMS,
  ['x'],
  (sql) => `WITH ${storeCtes(sql)} SELECT ${storeColumns(sql)}`,
);

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
  const { statement, values } = STORE_TRY_RESULTS(storeArgs(items, channel, workerId));
  const r = await q.query<StoredRow>(statement, values);
  return storedResultsOf(items, r.rows[0]!);
}

/** The arguments of STORE_PARAMS for some results. */
export function storeArgs(items: ResultToStore[], channel: string, workerId: string | null) {
  return {
    x: items,
    logs: logColumns(items.flatMap((x) => x.logs)),
    channel,
    nx: items.flatMap((x) => (x.successors ?? []).map((s) => ({ parent: x.token, ...s }))),
    workerId,
  };
}

/** The row of storeColumns. */
export interface StoredRow {
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
}

/** One answer per result, in order, from storeColumns' row. */
export function storedResultsOf(items: ResultToStore[], row: StoredRow): StoredResult[] {
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

/**
 * Records on a try's record that its process really ended now (task_tries.process_ended_at): a try of
 * `workerId` whose result was fenced out because the try had been ended for it (the worker declared lost,
 * the run cancelled). Only the first late end counts. False when there was nothing to record.
 */
export async function recordLateEnd(q: Queryable, workerId: string, m: TaskMessage): Promise<boolean> {
  const r = await q.query(
    `UPDATE task_tries SET process_ended_at = now()
     WHERE run_id = $1 AND task_id = $2 AND try_number = $3 AND worker_id = $4 AND process_ended_at IS NULL`,
    [m.runId, m.taskId, m.tryNumber, workerId],
  );
  return (r.rowCount ?? 0) > 0;
}
