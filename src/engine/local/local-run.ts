/**
 * Runs a DAG (or one task) in this process with no database and no broker: `airtasks dags test` and
 * `airtasks tasks test`, for DAG authors and CI. Same trigger-rule logic (decide) and the same operators
 * as the real workers; logs go to a callback instead of Postgres.
 */
import { parseDagFiles, listDagFiles } from '../dag/loader.js';
import type { SerializedDag, SerializedTask } from '../dag/types.js';
import { notFound, usageError, AirtasksError, ExitCode } from '../errors.js';
import { getOperator } from '../operators/registry.js';
import { TaskFailure, type TaskLog } from '../operators/types.js';
import { decide, nextRetry, type TaskStateBrief } from '../scheduler/decide.js';
import type { TaskState } from '../store/task-instances.js';

export interface LocalRunOptions {
  dagsFolder: string;
  dagId: string;
  conf: Record<string, unknown>;
  /** Run only this task, once, ignoring its upstreams (their outputs are undefined). */
  taskId?: string;
  /** Variables the tasks can read (there is no database). */
  variables?: Record<string, string>;
  /** Tasks run at once. */
  concurrency?: number;
  onLog?: (taskId: string, tryNumber: number, stream: string, line: string) => void;
  onTaskChange?: (taskId: string, state: TaskState, tryNumber: number) => void;
}

export interface LocalTaskResult {
  taskId: string;
  state: TaskState;
  tryNumber: number;
  output: unknown;
  error: string | null;
}

export interface LocalRunResult {
  dagId: string;
  runId: string;
  state: 'success' | 'failed';
  tasks: LocalTaskResult[];
}

/** Finds the DAG in the folder, importing the files in a child process as the scheduler does. */
export async function loadDag(dagsFolder: string, dagId: string): Promise<SerializedDag> {
  const results = await parseDagFiles(await listDagFiles(dagsFolder));
  for (const r of results) {
    const d = r.dags.find((x) => x.dagId === dagId);
    if (d) return d;
  }
  const broken = results.filter((r) => r.error);
  throw notFound(
    `no DAG "${dagId}" in ${dagsFolder}` +
      (broken.length
        ? `; ${broken.length} file(s) failed to import: ${broken.map((b) => `${b.fileloc}: ${b.error}`).join('; ')}`
        : ''),
  );
}

export async function runLocally(o: LocalRunOptions): Promise<LocalRunResult> {
  const dag = await loadDag(o.dagsFolder, o.dagId);
  const runId = `test__${new Date().toISOString()}`;
  const tasks = new Map(dag.tasks.map((t) => [t.taskId, t]));
  const results = new Map<string, LocalTaskResult>(
    dag.tasks.map((t) => [
      t.taskId,
      { taskId: t.taskId, state: 'none', tryNumber: 0, output: undefined, error: null },
    ]),
  );
  const set = (r: LocalTaskResult, state: TaskState) => {
    r.state = state;
    o.onTaskChange?.(r.taskId, state, r.tryNumber);
  };

  if (o.taskId !== undefined) {
    const task = tasks.get(o.taskId);
    if (!task)
      throw notFound(
        `DAG "${o.dagId}" has no task "${o.taskId}"; its tasks: ${[...tasks.keys()].join(', ')}`,
      );
    const r = results.get(o.taskId)!;
    r.tryNumber = 1;
    set(r, 'running');
    await execute(o, dag, task, r, new Map(), runId);
    set(r, r.error === null ? 'success' : 'failed');
    return { dagId: dag.dagId, runId, state: r.state === 'success' ? 'success' : 'failed', tasks: [r] };
  }

  const limit = o.concurrency ?? 8;
  const retryAt = new Map<string, Date>();
  const failures = new Map<string, number>();
  const running = new Map<string, Promise<void>>();
  for (;;) {
    const states = new Map<string, TaskStateBrief>(
      [...results.values()].map((r) => [
        r.taskId,
        // The output carries a branch task's choice, which decide() applies.
        { state: r.state, nextRetryAt: retryAt.get(r.taskId) ?? null, output: r.output },
      ]),
    );
    const d = decide(dag, states, new Date());
    for (const s of d.settle) set(results.get(s.taskId)!, s.state);
    if (d.runState) {
      return { dagId: dag.dagId, runId, state: d.runState, tasks: [...results.values()] };
    }
    for (const q of d.queue) {
      if (running.size >= limit) break;
      const r = results.get(q.taskId)!;
      const task = tasks.get(q.taskId)!;
      r.tryNumber++;
      set(r, 'running');
      const upstreamOutputs = new Map(task.upstream.map((u) => [u, results.get(u)!.output]));
      const p = execute(o, dag, task, r, upstreamOutputs, runId).then(() => {
        running.delete(q.taskId);
        if (r.error === null) return set(r, 'success');
        const next = nextRetry(task, failures.get(q.taskId) ?? 0, new Date());
        failures.set(q.taskId, (failures.get(q.taskId) ?? 0) + 1);
        if (next) retryAt.set(q.taskId, next);
        set(r, next ? 'up_for_retry' : 'failed');
      });
      running.set(q.taskId, p);
    }
    if (running.size > 0) {
      await Promise.race(running.values());
      continue;
    }
    const nextDue = Math.min(
      ...[...retryAt.entries()]
        .filter(([id]) => results.get(id)!.state === 'up_for_retry')
        .map(([, t]) => t.getTime()),
    );
    if (!Number.isFinite(nextDue)) {
      throw new AirtasksError(
        `DAG "${dag.dagId}" cannot make progress (no task is ready or running)`,
        ExitCode.ERROR,
      );
    }
    await new Promise((res) => setTimeout(res, Math.max(0, nextDue - Date.now())));
  }
}

async function execute(
  o: LocalRunOptions,
  dag: SerializedDag,
  task: SerializedTask,
  r: LocalTaskResult,
  outputs: Map<string, unknown>,
  runId: string,
) {
  const op = getOperator(task.operator);
  if (!op)
    throw usageError(`task "${task.taskId}" uses operator "${task.operator}", which is not registered`);
  const emit = (stream: string) => (line: string) => o.onLog?.(task.taskId, r.tryNumber, stream, line);
  const log: TaskLog = { stdout: emit('stdout'), stderr: emit('stderr'), system: emit('system') };
  const abort = new AbortController();
  const timer =
    task.timeoutMs === null
      ? null
      : setTimeout(() => abort.abort(`timed out after ${task.timeoutMs} ms`), task.timeoutMs);
  try {
    const res = await op.execute({
      dag,
      task,
      run: {
        dagId: dag.dagId,
        runId,
        taskId: task.taskId,
        tryNumber: r.tryNumber,
        logicalDate: new Date(),
        conf: o.conf,
        outputs,
      },
      log,
      signal: abort.signal,
      dagsFolder: o.dagsFolder,
      variable: async (key) => o.variables?.[key],
    });
    r.output = res.output;
    r.error = null;
  } catch (err) {
    r.error = err instanceof TaskFailure ? err.message : `${(err as Error).name}: ${(err as Error).message}`;
    log.system(`failed: ${r.error}`);
  } finally {
    if (timer) clearTimeout(timer);
  }
}
