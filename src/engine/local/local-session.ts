/**
 * One `dags test`: the DAG's run, and the runs its trigger tasks start (also run here, in this process,
 * as its RunLauncher). A run goes as the schedulers would take it (decide), each try as a worker runs it
 * (executeTry), with logs going to a callback instead of Postgres.
 */
import type { SerializedDag, SerializedTask, TaskCallbackEvent } from '../../core/dag-model.js';
import { notFound, AirtasksError, ExitCode } from '../../core/errors.js';
import type { TaskState } from '../../core/states.js';
import { itemIds, parseItemId } from '../dag/mapped.js';
import { dagHash } from '../dag/serialize.js';
import { taskOf } from '../dag/versions.js';
import { DEFAULT_OUTPUT_CAP_BYTES, executeTry, tryFailure } from '../execute-try.js';
import type { RunLauncher, TaskLog } from '../operators/types.js';
import { decide, nextRetry, type TaskStateBrief } from '../scheduler/decide.js';
import { localRunCallback, localTaskCallback, type LocalRunScope } from './local-callbacks.js';
import type { LocalRunOptions, LocalRunResult, LocalTaskResult } from './local-run.js';

/** Triggered runs that run at once in `dags test`. */
const CHILD_RUN_CONCURRENCY = 32;

export class LocalSession implements RunLauncher {
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
    const scope = this.scope(dag, conf, runId, prefix);
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
      await this.execute(scope, dag, task, r, new Map());
      set(r, r.error === null ? 'success' : 'failed');
      await localTaskCallback(scope, dag, task, r, r.error === null ? 'onSuccess' : 'onFailure');
      return { dagId: dag.dagId, runId, state: r.state === 'success' ? 'success' : 'failed', tasks: [r] };
    }

    const limit = o.concurrency ?? 8;
    // Items of mapped tasks, made when their task's list is known (as the scheduler makes their rows).
    const items = new Map<string, unknown>();
    const mappedOutput = (id: string) => {
      const n = Array.isArray(results.get(id)!.output) ? (results.get(id)!.output as unknown[]).length : 0;
      return itemIds(id, n).map((i) => (results.get(i)?.state === 'success' ? results.get(i)!.output : null));
    };
    const outputOf = (id: string) => (tasks.get(id)?.map ? mappedOutput(id) : results.get(id)!.output);
    const retryAt = new Map<string, Date>();
    const failures = new Map<string, number>();
    const running = new Map<string, Promise<void>>();
    for (;;) {
      const states = new Map<string, TaskStateBrief>(
        [...results.values()].map((r) => [
          r.taskId,
          // The output carries a branch task's choice, which decide() applies.
          {
            state: r.state,
            nextRetryAt: retryAt.get(r.taskId) ?? null,
            output: r.output,
            itemCount: Array.isArray(r.output) ? r.output.length : null,
          },
        ]),
      );
      const d = decide(dag, states, new Date());
      for (const s of d.settle) set(results.get(s.taskId)!, s.state);
      for (const id of d.expand) {
        const list = results.get(id)!.output as unknown[];
        if (list.length === 0) set(results.get(id)!, 'skipped');
        list.forEach((item, i) => {
          const iid = `${id}[${i}]`;
          if (results.has(iid)) return;
          items.set(iid, item);
          results.set(iid, { taskId: iid, state: 'none', tryNumber: 0, output: undefined, error: null });
        });
      }
      if (d.runState) {
        await localRunCallback(scope, dag, d.runState, [...results.values()]);
        return { dagId: dag.dagId, runId, state: d.runState, tasks: [...results.values()] };
      }
      for (const q of d.queue) {
        if (running.size >= limit) break;
        const r = results.get(q.taskId)!;
        const task = taskOf(dag, q.taskId)!;
        r.tryNumber++;
        set(r, 'running');
        const upstreamOutputs = new Map(task.upstream.map((u) => [u, outputOf(u)]));
        const item = parseItemId(q.taskId) ? { item: items.get(q.taskId) } : undefined;
        const p = this.execute(scope, dag, task, r, upstreamOutputs, item).then(async () => {
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
          await localTaskCallback(scope, dag, task, r, event);
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

  /** What the tries and callbacks of one run share: its log lines, its run as a try sees it, variables. */
  private scope(
    dag: SerializedDag,
    conf: Record<string, unknown>,
    runId: string,
    prefix: string,
  ): LocalRunScope {
    return {
      dagsFolder: this.o.dagsFolder,
      variable: async (key) => this.o.variables?.[key],
      logFor: (taskId, tryNumber): TaskLog => {
        const emit = (stream: string) => (line: string) =>
          this.o.onLog?.(`${prefix}${taskId}`, tryNumber, stream, line);
        return { stdout: emit('stdout'), stderr: emit('stderr'), system: emit('system') };
      },
      runInfo: (taskId, tryNumber, outputs = new Map()) => ({
        dagId: dag.dagId,
        runId,
        taskId,
        tryNumber,
        logicalDate: new Date(),
        conf,
        outputs,
      }),
    };
  }

  /** One try, as a worker runs it: its output or its error goes to `r`. */
  private async execute(
    scope: LocalRunScope,
    dag: SerializedDag,
    task: SerializedTask,
    r: LocalTaskResult,
    outputs: Map<string, unknown>,
    /** Set for an item of a mapped task. */
    mapped?: { item: unknown },
  ) {
    const log = scope.logFor(r.taskId, r.tryNumber);
    const abort = new AbortController();
    const run = scope.runInfo(r.taskId, r.tryNumber, outputs);
    if (mapped) Object.assign(run, { mapIndex: parseItemId(r.taskId)!.index, item: mapped.item });
    try {
      const res = await executeTry(
        {
          dag,
          task,
          run,
          log,
          signal: abort.signal,
          dagsFolder: scope.dagsFolder,
          variable: scope.variable,
          runs: this,
        },
        abort,
        DEFAULT_OUTPUT_CAP_BYTES,
      );
      r.output = res.output;
      r.error = null;
    } catch (err) {
      r.error = tryFailure(err, log).message;
    }
  }
}
