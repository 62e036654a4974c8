/**
 * The DAG authoring API that DAG files import from 'airtasks': dag(), the Dag it returns and the TaskRef
 * of each task added.
 *
 *   const d = dag('example', { defaults: { retries: 1 } });
 *   const a = d.bash('a', { command: 'echo {{ conf.name }}' });
 *   const b = d.node('b', { upstream: a, run: (ctx) => ctx.output(a).length });
 *   export default d;
 */
import { toMs } from '../../core/duration.js';
import type {
  RunCallbacks,
  SerializedDag,
  SerializedSchedule,
  TaskCallbacks,
  WeightRule,
} from '../../core/dag-model.js';
import { BRANCH_OPERATOR } from './branch.js';
import {
  callbackSpec,
  functionKey,
  RUN_CALLBACK_EVENTS,
  TASK_CALLBACK_EVENTS,
  type DagFunction,
} from './functions.js';
import {
  bashTask,
  dockerTask,
  functionTask,
  multiTriggerTask,
  triggerDagTask,
  type BuiltinTask,
} from './operator-args.js';
import type {
  BashOptions,
  BranchOptions,
  DagOptions,
  DockerOptions,
  MapOptions,
  MultiTriggerOptions,
  NodeOptions,
  TaskOptions,
  TriggerDagOptions,
} from './options.js';
import { mapFunctionKey, mapSpec } from './mapped.js';
import { applyParams, normalizeParams, type JsonSchema } from './params.js';
import { normalizeSchedule } from './schedule.js';
import { DEFAULT_QUEUE, serializeDag, taskSpec, type TaskSpec } from './serialize.js';
import { checkId, DagValidationError } from './validate.js';

const DAG_BRAND = Symbol.for('airtasks.dag');

export class TaskRef<T> {
  declare readonly __output?: T;
  /** @internal */
  readonly upstreamIds = new Set<string>();

  constructor(
    readonly dag: Dag<never>,
    readonly id: string,
    /** @internal */ readonly spec: TaskSpec,
  ) {}

  /** This task runs after the given tasks. */
  setUpstream(...tasks: Array<TaskRef<unknown> | ReadonlyArray<TaskRef<unknown>>>): this {
    for (const t of tasks.flat()) {
      if (t.dag !== this.dag) {
        throw new DagValidationError(
          `task "${t.id}" belongs to DAG "${t.dag.id}", not "${this.dag.id}"; use a trigger task to link DAGs`,
          this.dag.id,
        );
      }
      this.upstreamIds.add(t.id);
    }
    return this;
  }

  /** The given tasks run after this one. */
  setDownstream(...tasks: Array<TaskRef<unknown> | ReadonlyArray<TaskRef<unknown>>>): this {
    for (const t of tasks.flat()) t.setUpstream(this);
    return this;
  }
}

export class Dag<Conf = Record<string, unknown>> {
  readonly [DAG_BRAND] = true;
  readonly tasks = new Map<string, TaskRef<unknown>>();
  /** @internal Functions of the DAG file by functionKey(): node tasks, callbacks, computed trigger conf/items. */
  readonly functions = new Map<string, DagFunction>();
  /** The JSON schema of the conf (from options.params), or undefined. */
  readonly paramsSchema: JsonSchema | undefined;
  private readonly runCallbacks: RunCallbacks | undefined;
  /** Tasks whose weightRule was set; applied at serialisation, when the whole graph is known. */
  private readonly weightRules = new Map<string, WeightRule>();
  /** @internal Checked when the DAG is declared, so a bad schedule is an import error naming the DAG. */
  private readonly schedule: SerializedSchedule | undefined;

  constructor(
    readonly id: string,
    readonly options: DagOptions = {},
  ) {
    checkId('DAG', id);
    try {
      this.schedule = normalizeSchedule(options);
      for (const k of ['maxActiveRuns', 'maxActiveTasks'] as const) {
        const v = options[k];
        if (v !== undefined && (!Number.isInteger(v) || v < 1))
          throw new Error(`${k} must be an integer >= 1 (leave it out for no limit)`);
      }
    } catch (err) {
      throw new DagValidationError(`DAG "${id}": ${(err as Error).message}`, id);
    }
    // A bad duration is reported where the DAG is defined, not later at serialisation.
    if (options.runTimeout !== undefined) toMs(options.runTimeout, 'runTimeout');
    try {
      this.paramsSchema = options.params === undefined ? undefined : normalizeParams(options.params);
    } catch (err) {
      throw new DagValidationError(`DAG "${id}": ${(err as Error).message}`, id);
    }
    // Scheduled runs get the params' defaults as their conf (as in Airflow), so those must be valid.
    if (this.schedule && this.paramsSchema) {
      try {
        applyParams(this.paramsSchema, {}, id);
      } catch (err) {
        throw new DagValidationError(
          `DAG "${id}": scheduled runs get only the params' defaults as conf, and those are not valid (${(err as Error).message}); give those params defaults`,
          id,
        );
      }
    }
    let rc: RunCallbacks | undefined;
    for (const event of RUN_CALLBACK_EVENTS) {
      const cb = options[event];
      if (cb === undefined) continue;
      rc ??= { queue: checkId('queue', options.defaults?.queue ?? DEFAULT_QUEUE) };
      const { spec, fn } = callbackSpec(cb, `${event} of DAG "${id}"`, id);
      rc[event] = spec;
      if (fn) this.functions.set(functionKey(null, event), fn);
    }
    this.runCallbacks = rc;
  }

  /** Starts one run of another DAG; the output is the started run's id. */
  triggerDag(id: string, opts: TriggerDagOptions<Conf>): TaskRef<string> {
    return this.builtin(id, triggerDagTask(this.id, id, opts), opts);
  }

  /** Starts one run of another DAG per item; the output is the list of run ids, in item order. */
  multiTrigger(id: string, opts: MultiTriggerOptions<Conf>): TaskRef<string[]> {
    return this.builtin(id, multiTriggerTask(this.id, id, opts), opts);
  }

  /** A mapped task's output, as its downstream tasks get it, is its items' outputs (null: failed). */
  bash(id: string, opts: BashOptions & { map: MapOptions<Conf> }): TaskRef<Array<string | null>>;
  bash(id: string, opts: BashOptions): TaskRef<string>;
  bash(id: string, opts: BashOptions): TaskRef<unknown> {
    return this.builtin(id, bashTask(this.id, id, opts), opts);
  }

  node<T>(
    id: string,
    opts: NodeOptions<Conf, T> & { map: MapOptions<Conf> },
  ): TaskRef<Array<Awaited<T> | null>>;
  node<T>(id: string, opts: NodeOptions<Conf, T>): TaskRef<Awaited<T>>;
  node<T>(id: string, opts: NodeOptions<Conf, T>): TaskRef<unknown> {
    return this.builtin(id, functionTask(this.id, id, 'node', opts), opts);
  }

  /**
   * A node task that chooses which of its direct downstream tasks run (Airflow's BranchPythonOperator);
   * its output is the list of chosen task ids. A task that joins the branches again typically uses the
   * trigger rule `none_failed_min_one_success`.
   */
  branch(id: string, opts: BranchOptions<Conf>): TaskRef<string[]> {
    return this.builtin(id, functionTask(this.id, id, BRANCH_OPERATOR, opts), opts);
  }

  docker(id: string, opts: DockerOptions): TaskRef<unknown> {
    return this.builtin(id, dockerTask(this.id, id, opts), opts);
  }

  /** Adds a task of a built-in operator and keeps the DAG-file function it calls, once the task is added. */
  private builtin<T>(id: string, t: BuiltinTask, opts: TaskOptions): TaskRef<T> {
    const ref = this.task<T>(id, t.operator, t.args, opts);
    if (t.fn) this.functions.set(id, t.fn);
    return ref;
  }

  /** Adds a task of any registered operator; the building block for custom operators. */
  task<T>(id: string, operator: string, args: Record<string, unknown>, opts: TaskOptions = {}): TaskRef<T> {
    checkId('task', id);
    if (this.tasks.has(id))
      throw new DagValidationError(`duplicate task id "${id}" in DAG "${this.id}"`, this.id);
    const d = { ...this.options.defaults, ...stripUndefined(opts) };
    const spec = taskSpec(this.id, id, operator, args, d);
    const callbacks: TaskCallbacks = {};
    const fns = new Map<string, DagFunction>();
    for (const event of TASK_CALLBACK_EVENTS) {
      const cb = d[event];
      if (cb === undefined) continue;
      const c = callbackSpec(cb, `${event} of task "${id}"`, this.id);
      callbacks[event] = c.spec;
      if (c.fn) fns.set(functionKey(id, event), c.fn);
    }
    if (Object.keys(callbacks).length > 0) spec.callbacks = callbacks;
    const mapped = opts.map === undefined ? undefined : mapSpec(this.id, id, opts.map);
    if (mapped) {
      spec.map = mapped.map;
      if (mapped.fn) fns.set(mapFunctionKey(id), mapped.fn);
    }
    const ref = new TaskRef<T>(this as unknown as Dag<never>, id, spec);
    // Upstreams are checked before anything is kept, so a refused call leaves the DAG unchanged.
    if (opts.upstream) ref.setUpstream(opts.upstream as TaskRef<unknown>);
    // The task whose output is the list is an upstream of the mapped task.
    if (mapped?.from) ref.setUpstream(opts.map!.over as TaskRef<unknown>);
    this.tasks.set(id, ref as TaskRef<unknown>);
    if (d.weightRule !== undefined) this.weightRules.set(id, d.weightRule);
    for (const [key, fn] of fns) this.functions.set(key, fn);
    return ref;
  }

  /** The code-free form the store keeps. Throws DagValidationError if the DAG is not valid. */
  serialize(fileloc = ''): SerializedDag {
    const { id, options, weightRules, schedule, paramsSchema, runCallbacks } = this;
    return serializeDag(
      { id, options, tasks: this.tasks.values(), weightRules, schedule, paramsSchema, runCallbacks },
      fileloc,
    );
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function dag<Conf = Record<string, unknown>>(id: string, options?: DagOptions): Dag<Conf> {
  return new Dag<Conf>(id, options);
}

export function isDag(value: unknown): value is Dag<unknown> {
  return (
    typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[DAG_BRAND] === true
  );
}
