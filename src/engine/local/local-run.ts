/**
 * Runs a DAG (or one task) in this process with no database and no broker: `airtasks dags test` and
 * `airtasks tasks test`, for DAG authors and CI. Same trigger-rule logic (decide) and the same operators
 * as the real workers; logs go to a callback instead of Postgres.
 */
import { functionKey } from '../dag/functions.js';
import { parseDagFiles, listDagFiles } from '../dag/loader.js';
import { applyParams, ConfValidationError } from '../dag/params.js';
import { dagHash } from '../dag/serialize.js';
import type { CallbackSpec, SerializedDag, SerializedTask, TaskCallbackEvent } from '../../core/dag-model.js';
import { notFound, usageError, AirtasksError, ExitCode } from '../../core/errors.js';
import { prefixedLog, runCallback } from '../operators/callbacks.js';
import { resolveOperator } from '../operators/registry.js';
import { TaskFailure, type RunInfo, type RunLauncher, type TaskLog } from '../operators/types.js';
import { decide, nextRetry, type TaskStateBrief } from '../scheduler/decide.js';
import type { TaskState } from '../../core/states.js';

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
  /** Runs that trigger tasks started (run here too, after the DAG's own tasks). */
  triggeredRuns?: Array<{ dagId: string; runId: string; state: string }>;
}

/** Triggered runs that run at once in `dags test`. */
const CHILD_RUN_CONCURRENCY = 32;

/** Finds the DAG in the folder, importing the files in a child process as the scheduler does. */
export async function loadDag(dagsFolder: string, dagId: string): Promise<SerializedDag> {
  return (await loadDags(dagsFolder, dagId)).get(dagId)!;
}

/** Every DAG of the folder by id; a not-found error when `dagId` is not among them. */
async function loadDags(dagsFolder: string, dagId: string): Promise<Map<string, SerializedDag>> {
  const results = await parseDagFiles(await listDagFiles(dagsFolder));
  const all = new Map<string, SerializedDag>();
  for (const r of results) for (const d of r.dags) if (!all.has(d.dagId)) all.set(d.dagId, d);
  if (all.has(dagId)) return all;
  const broken = results.filter((r) => r.error);
  throw notFound(
    `no DAG "${dagId}" in ${dagsFolder}` +
      (broken.length
        ? `; ${broken.length} file(s) failed to import: ${broken.map((b) => `${b.fileloc}: ${b.error}`).join('; ')}`
        : ''),
  );
}

export async function runLocally(o: LocalRunOptions): Promise<LocalRunResult> {
  const all = await loadDags(o.dagsFolder, o.dagId);
  const dag = all.get(o.dagId)!;
  let conf: Record<string, unknown>;
  try {
    conf = applyParams(dag.params, o.conf, dag.dagId);
  } catch (err) {
    if (err instanceof ConfValidationError) throw usageError(err.message);
    throw err;
  }
  const session = new LocalSession(o, all);
  const result = await session.run(dag, conf, `test__${new Date().toISOString()}`, o.taskId);
  const triggered = await session.drain();
  return triggered.length > 0 ? { ...result, triggeredRuns: triggered } : result;
}

/** One `dags test`: the DAG's run, and the runs its trigger tasks start (also run here, in this process). */
class LocalSession implements RunLauncher {
  private readonly triggered = new Map<string, { dagId: string; runId: string; state: string }>();
  private readonly pending = new Set<Promise<void>>();
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly o: LocalRunOptions,
    private readonly all: Map<string, SerializedDag>,
  ) {}

  async currentVersion(dagId: string) {
    const dag = this.all.get(dagId);
    return dag ? { hash: dagHash(dag), dag } : undefined;
  }

  async createRuns(list: Array<{ runId: string; dagId: string; conf: Record<string, unknown> }>) {
    const created: string[] = [];
    for (const r of list) {
      if (this.triggered.has(r.runId)) continue;
      const entry = { dagId: r.dagId, runId: r.runId, state: 'queued' };
      this.triggered.set(r.runId, entry);
      created.push(r.runId);
      const dag = this.all.get(r.dagId)!;
      const p = this.slot(async () => {
        entry.state = 'running';
        try {
          entry.state = (await this.run(dag, r.conf, r.runId, undefined, `${r.dagId}/`)).state;
        } catch (err) {
          entry.state = 'failed';
          this.o.onLog?.(`${r.dagId}`, 0, 'system', `run ${r.runId} failed: ${(err as Error).message}`);
        }
      });
      this.pending.add(p);
      void p.finally(() => this.pending.delete(p));
    }
    return { created, dagIdOf: new Map([...this.triggered.values()].map((t) => [t.runId, t.dagId])) };
  }

  async runStates(ids: string[]) {
    return new Map(ids.map((id) => [id, this.triggered.get(id)?.state ?? 'missing']));
  }

  /** Waits for every triggered run (including runs those start); returns them all. */
  async drain() {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    return [...this.triggered.values()];
  }

  private async slot(fn: () => Promise<void>) {
    if (this.active >= CHILD_RUN_CONCURRENCY) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }

  /** Runs a DAG (or one task of it) to the end. `prefix` marks the log lines of triggered runs. */
  async run(
    dag: SerializedDag,
    conf: Record<string, unknown>,
    runId: string,
    taskId?: string,
    prefix = '',
  ): Promise<LocalRunResult> {
    const o = this.o;
    const tasks = new Map(dag.tasks.map((t) => [t.taskId, t]));
    const results = new Map<string, LocalTaskResult>(
      dag.tasks.map((t) => [
        t.taskId,
        { taskId: t.taskId, state: 'none', tryNumber: 0, output: undefined, error: null },
      ]),
    );
    const set = (r: LocalTaskResult, state: TaskState) => {
      r.state = state;
      if (!prefix) o.onTaskChange?.(r.taskId, state, r.tryNumber);
    };

    if (taskId !== undefined) {
      const task = tasks.get(taskId);
      if (!task)
        throw notFound(
          `DAG "${dag.dagId}" has no task "${taskId}"; its tasks: ${[...tasks.keys()].join(', ')}`,
        );
      const r = results.get(taskId)!;
      r.tryNumber = 1;
      set(r, 'running');
      await this.execute(dag, task, r, new Map(), runId, conf, prefix);
      set(r, r.error === null ? 'success' : 'failed');
      await this.taskCallback(
        dag,
        task,
        r,
        r.error === null ? 'onSuccess' : 'onFailure',
        runId,
        conf,
        prefix,
      );
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
        await this.runCallback(dag, d.runState, [...results.values()], runId, conf, prefix);
        return { dagId: dag.dagId, runId, state: d.runState, tasks: [...results.values()] };
      }
      for (const q of d.queue) {
        if (running.size >= limit) break;
        const r = results.get(q.taskId)!;
        const task = tasks.get(q.taskId)!;
        r.tryNumber++;
        set(r, 'running');
        const upstreamOutputs = new Map(task.upstream.map((u) => [u, results.get(u)!.output]));
        const p = this.execute(dag, task, r, upstreamOutputs, runId, conf, prefix).then(async () => {
          let event: TaskCallbackEvent;
          if (r.error === null) {
            set(r, 'success');
            event = 'onSuccess';
          } else {
            const next = nextRetry(task, failures.get(q.taskId) ?? 0, new Date());
            failures.set(q.taskId, (failures.get(q.taskId) ?? 0) + 1);
            if (next) retryAt.set(q.taskId, next);
            set(r, next ? 'up_for_retry' : 'failed');
            event = next ? 'onRetry' : 'onFailure';
          }
          await this.taskCallback(dag, task, r, event, runId, conf, prefix);
          running.delete(q.taskId);
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

  private logFor(taskId: string, tryNumber: number, prefix: string): TaskLog {
    const emit = (stream: string) => (line: string) =>
      this.o.onLog?.(`${prefix}${taskId}`, tryNumber, stream, line);
    return { stdout: emit('stdout'), stderr: emit('stderr'), system: emit('system') };
  }

  private runInfo(
    dag: SerializedDag,
    taskId: string,
    tryNumber: number,
    runId: string,
    conf: Record<string, unknown>,
    outputs: Map<string, unknown>,
  ): RunInfo {
    return { dagId: dag.dagId, runId, taskId, tryNumber, logicalDate: new Date(), conf, outputs };
  }

  private async execute(
    dag: SerializedDag,
    task: SerializedTask,
    r: LocalTaskResult,
    outputs: Map<string, unknown>,
    runId: string,
    conf: Record<string, unknown>,
    prefix: string,
  ) {
    const o = this.o;
    const op = resolveOperator(task.operator);
    const log = this.logFor(task.taskId, r.tryNumber, prefix);
    const abort = new AbortController();
    const timer =
      task.timeoutMs === null
        ? null
        : setTimeout(() => abort.abort(`timed out after ${task.timeoutMs} ms`), task.timeoutMs);
    try {
      const res = await op.execute({
        dag,
        task,
        run: this.runInfo(dag, task.taskId, r.tryNumber, runId, conf, outputs),
        log,
        signal: abort.signal,
        dagsFolder: o.dagsFolder,
        variable: async (key) => o.variables?.[key],
        runs: this,
      });
      r.output = res.output;
      r.error = null;
    } catch (err) {
      r.error =
        err instanceof TaskFailure ? err.message : `${(err as Error).name}: ${(err as Error).message}`;
      log.system(`failed: ${r.error}`);
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  private async taskCallback(
    dag: SerializedDag,
    task: SerializedTask,
    r: LocalTaskResult,
    event: TaskCallbackEvent,
    runId: string,
    conf: Record<string, unknown>,
    prefix: string,
  ) {
    const spec = task.callbacks?.[event];
    if (!spec) return;
    const log = prefixedLog(this.logFor(task.taskId, r.tryNumber, prefix), event);
    await this.callback(
      spec,
      functionKey(task.taskId, event),
      dag,
      event,
      r.state,
      r.error,
      log,
      {
        ...this.runInfo(dag, task.taskId, r.tryNumber, runId, conf, new Map()),
      },
      true,
    );
  }

  private async runCallback(
    dag: SerializedDag,
    state: 'success' | 'failed',
    tasks: LocalTaskResult[],
    runId: string,
    conf: Record<string, unknown>,
    prefix: string,
  ) {
    const event = state === 'success' ? 'onRunSuccess' : 'onRunFailure';
    const spec = dag.runCallbacks?.[event];
    if (!spec) return;
    const failed = tasks.filter((t) => t.state === 'failed' || t.state === 'upstream_failed');
    const error =
      state === 'failed'
        ? `failed tasks: ${failed.map((t) => `${t.taskId} (${t.error ?? t.state})`).join(', ')}`
        : null;
    const taskId = `@${event}`;
    await this.callback(
      spec,
      functionKey(null, event),
      dag,
      event,
      state,
      error,
      this.logFor(taskId, 1, prefix),
      {
        ...this.runInfo(dag, taskId, 1, runId, conf, new Map()),
      },
      false,
    );
  }

  private async callback(
    spec: CallbackSpec,
    key: string,
    dag: SerializedDag,
    event: TaskCallbackEvent | 'onRunSuccess' | 'onRunFailure',
    state: string,
    error: string | null,
    log: TaskLog,
    run: RunInfo,
    forTask: boolean,
  ) {
    const failure = await runCallback({
      spec,
      key,
      dag,
      dagsFolder: this.o.dagsFolder,
      event,
      state,
      error,
      run,
      forTask,
      log,
      variable: async (k) => this.o.variables?.[k],
    });
    if (failure) log.system(`callback failed: ${failure} (the result stays ${state})`);
  }
}
