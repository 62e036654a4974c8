/** Starting runs, and waiting for them. */
import { randomBytes } from 'node:crypto';
import { AirtasksError, ExitCode, NotFoundError, ValidationError } from '../core/errors.js';
import { applyParams, ConfValidationError } from '../engine/dag/params.js';
import type { SerializedDag } from '../core/dag-model.js';
import { TERMINAL_RUN_STATES, type RunState, type TaskState } from '../core/states.js';
import type { Db, Queryable } from '../engine/store/db.js';
import { poolSizes } from '../engine/store/pools.js';
import * as dags from '../engine/store/dags.js';
import * as runs from '../engine/store/runs.js';
import * as tis from '../engine/store/task-instances.js';
import { publishOutbox } from '../engine/publish-outbox.js';
import { createRun } from '../engine/start-run.js';
import type { OutboxRow } from '../engine/store/outbox.js';
import { silentLogger } from '../core/logger.js';
import type { ConnectionOptions } from './config.js';
import { unknownDag } from './dags.js';
import { oneShotBroker, withEngine, type Engine } from './engine.js';
import { watchRuns } from './run-end-watch.js';
import { checkStorableJson } from './input-checks.js';

export interface TaskSummary {
  taskId: string;
  state: TaskState;
  tryNumber: number;
}

export interface RunSummary {
  dagId: string;
  runId: string;
  state: RunState;
  conf: Record<string, unknown>;
  tasks: TaskSummary[];
}

export interface TriggerOptions extends ConnectionOptions {
  dagId: string;
  /** Conf as JSON text: a JSON object, checked before anything is written. */
  confText?: string;
  runId?: string;
  wait?: boolean;
  timeoutMs?: number;
  onTaskChange?: (t: TaskSummary) => void;
  /** Told things the caller should know, e.g. that the DAG is paused so the run waits queued. */
  onNotice?: (message: string) => void;
}

const RUN_ID = /^[A-Za-z0-9_.:+-]{1,250}$/;

/**
 * Parses a JSON object given as text (run parameters, or a local run's variables): a validation error
 * of `field` saying what is wrong otherwise.
 */
export function parseConf(text: string | undefined, field = 'conf'): Record<string, unknown> {
  if (text === undefined || text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    const why = (err as Error).message;
    throw new ValidationError(field, 'malformed', (name) => `${name} is not valid JSON: ${why}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    const got = Array.isArray(v) ? 'an array' : JSON.stringify(v);
    throw new ValidationError(
      field,
      'wrong-type',
      (name) => `${name} must be a JSON object such as '{"name": "value"}', got ${got}`,
    );
  }
  checkStorableJson(v, field);
  return v as Record<string, unknown>;
}

/** How long a trigger waits for RabbitMQ to send its run's first messages itself. */
const FIRST_MESSAGES_WAIT_MS = 1000;

export function newRunId(kind = 'manual'): string {
  return `${kind}__${new Date().toISOString()}_${randomBytes(2).toString('hex')}`;
}

export async function triggerDag(o: TriggerOptions): Promise<RunSummary> {
  // Everything the user gave is checked before anything is written.
  const conf = parseConf(o.confText);
  if (o.runId !== undefined && !RUN_ID.test(o.runId)) {
    const runId = o.runId;
    throw new ValidationError(
      'runId',
      'malformed',
      `invalid run id "${runId}": use 1-250 letters, digits and _ . : + -`,
      { value: runId },
    );
  }
  return withEngine(o, async (engine) => {
    const { outcome, dag, version, runId } = await createTriggeredRun(engine, o, conf);
    if (outcome === 'taken')
      throw new ValidationError('runId', 'taken', `a run with id "${runId}" already exists`, {
        value: runId,
      });
    if (dag.is_paused) {
      // As in Airflow: the run is accepted and starts once the DAG is unpaused.
      o.onNotice?.(
        `DAG "${dag.dag_id}" is paused: run ${runId} stays queued until \`airtasks dags unpause ${dag.dag_id}\``,
      );
    }
    for (const notice of await poolNotices(engine.db, version)) o.onNotice?.(notice);
    if (!o.wait) return await summarize(engine.db, runId);
    return await waitForRun(engine.db, runId, { timeoutMs: o.timeoutMs, onTaskChange: o.onTaskChange });
  });
}

/**
 * Creates the run, started here when the schedulers would start it at once. Its first messages are sent
 * from here, so that no scheduler's hop is in the way of its start: RabbitMQ is connected while the DAG is
 * read (the Postgres queue needs no connection, the API has one open); when it does not answer in time, a
 * scheduler is told to send them.
 */
async function createTriggeredRun(engine: Engine, o: TriggerOptions, conf: Record<string, unknown>) {
  const sender = oneShotBroker(engine, FIRST_MESSAGES_WAIT_MS);
  try {
    const { db } = engine;
    const dag = await dags.getDag(db, o.dagId);
    if (!dag || !dag.is_active) throw await unknownDag(db, o.dagId);
    const version = await dags.getVersion(db, dag.hash);
    const runConf = checkConf(version?.params, conf, dag.dag_id);
    const runId = o.runId ?? newRunId();
    const run = { runId, dagId: dag.dag_id, dagHash: dag.hash, conf: runConf };
    const broker = await sender.ready(version?.tasks.map((t) => t.queue) ?? []);
    const publish = broker && ((rows: OutboxRow[]) => publishOutbox(broker, db, rows, silentLogger));
    const outcome = await createRun(db, run, version, publish);
    return { outcome, dag, version, runId };
  } finally {
    await sender.close();
  }
}

/** What keeps tasks of the DAG waiting for pools: a pool that does not exist, or one too small for a task. */
async function poolNotices(db: Queryable, dag: SerializedDag | undefined): Promise<string[]> {
  const wanted = new Map<string, Array<{ taskId: string; slots: number }>>();
  for (const t of dag?.tasks ?? [])
    if (t.pool)
      wanted.set(t.pool, [...(wanted.get(t.pool) ?? []), { taskId: t.taskId, slots: t.poolSlots ?? 1 }]);
  if (wanted.size === 0) return [];
  const existing = await poolSizes(db, [...wanted.keys()]);
  const notices: string[] = [];
  for (const [pool, tasks] of wanted) {
    const slots = existing.get(pool);
    const ids = tasks.map((t) => t.taskId).join(', ');
    if (slots === undefined)
      notices.push(
        `pool "${pool}" does not exist: task(s) ${ids} wait until \`airtasks pools set ${pool} <slots>\``,
      );
    else {
      const tooBig = tasks.filter((t) => t.slots > slots);
      if (tooBig.length > 0)
        notices.push(
          `pool "${pool}" has ${slots} slot(s): task(s) ${tooBig.map((t) => `${t.taskId} (needs ${t.slots})`).join(', ')} wait until it is made bigger`,
        );
    }
  }
  return notices;
}

/** The conf with the DAG's param defaults merged in, or a validation error naming every invalid field. */
export function checkConf(
  schema: Record<string, unknown> | undefined,
  conf: Record<string, unknown>,
  dagId: string,
): Record<string, unknown> {
  try {
    return applyParams(schema, conf, dagId);
  } catch (err) {
    if (err instanceof ConfValidationError) {
      const message = `${err.message} (airtasks dags show ${dagId} lists its params)`;
      throw new ValidationError('conf', 'schema', () => message, { cause: err });
    }
    throw err;
  }
}

export async function summarize(db: Db, runId: string): Promise<RunSummary> {
  const run = await runs.getRun(db, runId);
  if (!run) throw new NotFoundError('run', runId, `unknown run "${runId}"`);
  const list = await tis.listTaskInstances(db, runId);
  return {
    dagId: run.dag_id,
    runId: run.run_id,
    state: run.state,
    conf: run.conf,
    tasks: list.map((t) => ({ taskId: t.task_id, state: t.state, tryNumber: t.try_number })),
  };
}

export class WaitTimeout extends AirtasksError {
  constructor(
    readonly summary: RunSummary,
    seconds: number,
  ) {
    super(
      `run ${summary.runId} did not finish within ${seconds}s (still ${summary.state})`,
      ExitCode.WAIT_TIMEOUT,
    );
  }
}

/** Waits until the run ends, reporting each task state change; throws WaitTimeout past the timeout. */
export async function waitForRun(
  db: Db,
  runId: string,
  o: { timeoutMs?: number; onTaskChange?: (t: TaskSummary) => void; pollMs?: number } = {},
): Promise<RunSummary> {
  const deadline = o.timeoutMs ? Date.now() + o.timeoutMs : Infinity;
  const seen = new Map<string, string>();
  const watch = await watchRuns(db, (id) => id === runId);
  try {
    for (;;) {
      const s = await summarize(db, runId);
      for (const t of s.tasks) {
        const key = `${t.state}:${t.tryNumber}`;
        if (seen.get(t.taskId) !== key && !(t.state === 'none' && !seen.has(t.taskId))) o.onTaskChange?.(t);
        seen.set(t.taskId, key);
      }
      if (TERMINAL_RUN_STATES.includes(s.state)) return s;
      const left = deadline - Date.now();
      if (left <= 0) throw new WaitTimeout(s, Math.round((o.timeoutMs ?? 0) / 1000));
      await watch.nap(Math.min(left, o.pollMs ?? 1000));
    }
  } finally {
    await watch.close();
  }
}
