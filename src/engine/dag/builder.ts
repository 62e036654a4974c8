/**
 * The DAG authoring API that DAG files import from 'airtasks'.
 *
 *   const d = dag('example', { defaults: { retries: 1 } });
 *   const a = d.bash('a', { command: 'echo {{ conf.name }}' });
 *   const b = d.node('b', { upstream: a, run: (ctx) => ctx.output(a).length });
 *   export default d;
 */
import { toMs } from '../../core/duration.js';
import type { Duration } from '../../core/duration.js';
import type { TaskContext } from './context.js';
import { applyParams, normalizeParams, type JsonSchema, type ParamsSpec } from './params.js';
import { checkId, DagValidationError, findCycle, validateDag } from './validate.js';
import { applyWeightRules } from './weights.js';
import { BRANCH_OPERATOR, type BranchChoice } from './branch.js';
import { normalizeSchedule, type ScheduleOptions } from './schedule.js';
import type { Callback, TaskDefaults } from './types.js';
import type {
  CallbackSpec,
  RunCallbackEvent,
  RunCallbacks,
  SerializedDag,
  SerializedSchedule,
  SerializedTask,
  TaskCallbackEvent,
  TaskCallbacks,
  TriggerRule,
  WeightRule,
} from '../../core/dag-model.js';
import { WEIGHT_RULES } from '../../core/dag-model.js';

const DAG_BRAND = Symbol.for('airtasks.dag');
export const DEFAULT_QUEUE = 'worker';

export interface DagOptions extends ScheduleOptions {
  description?: string;
  tags?: string[];
  defaults?: TaskDefaults;
  /** At most this many runs of this DAG running at once (manual and scheduled); the rest wait queued. */
  maxActiveRuns?: number;
  /** At most this many task instances of this DAG (across its runs) queued or running at once. */
  maxActiveTasks?: number;
  /** A run still going after this long (from its start) is failed and its running tasks are stopped. */
  runTimeout?: Duration;
  /**
   * The run parameters (conf) this DAG accepts: { name: JSON schema } (a param without a default is
   * required) or a full JSON schema of the conf object. Defaults are merged in; invalid conf is refused.
   */
  params?: ParamsSpec;
  /** Runs in a worker (queue: defaults.queue) once a run has failed: a bash command or a function. */
  onRunFailure?: Callback;
  /** Runs in a worker once a run has succeeded. */
  onRunSuccess?: Callback;
}

export const TASK_CALLBACK_EVENTS: readonly TaskCallbackEvent[] = ['onSuccess', 'onFailure', 'onRetry'];
export const RUN_CALLBACK_EVENTS: readonly RunCallbackEvent[] = ['onRunSuccess', 'onRunFailure'];

/**
 * Key of a function of the DAG file in Dag.functions: a task's own function under its id, a task
 * callback under `<task>#<event>`, a run callback under `#<event>` ('#' is never part of an id).
 */
export function functionKey(taskId: string | null, event?: TaskCallbackEvent | RunCallbackEvent): string {
  return event ? `${taskId ?? ''}#${event}` : (taskId ?? '');
}

/** Starts one run of another DAG; see src/engine/operators/trigger-dag.ts. */
export interface TriggerDagOptions<Conf> extends TaskOptions {
  /** The DAG to start. */
  dagId: string;
  /** The run's conf: an object whose strings are templated ({{ conf.x }}, {{ ds }}), or a function computing it. */
  conf?: Record<string, unknown> | ((ctx: TaskContext<Conf>) => unknown);
  /** Wait until the started run(s) end; the task fails if one of them failed. Default false. */
  waitForCompletion?: boolean;
  /** How often to look at the started runs while waiting (default 2s). */
  pollInterval?: Duration;
}

/** The items of a multi-trigger: a list, an iterable (a generator), or a function returning either. */
export type TriggerItems<Conf> =
  | readonly unknown[]
  | Iterable<unknown>
  | ((ctx: TaskContext<Conf>) => Iterable<unknown> | AsyncIterable<unknown> | Promise<Iterable<unknown>>);

/** Starts one run of another DAG per item; see src/engine/operators/trigger-dag.ts. */
export interface MultiTriggerOptions<Conf> extends TaskOptions {
  dagId: string;
  /**
   * One run per item; an object item is that run's conf as it is, any other value becomes { item: value }.
   * A list or generator is read when the DAG file is imported; a function (possibly async, or an async
   * generator function) is called in the worker when the task runs.
   */
  items: TriggerItems<Conf>;
  waitForCompletion?: boolean;
  pollInterval?: Duration;
  /** Refuse more items than this, before starting any run (default 10000). */
  maxItems?: number;
}

export interface TaskOptions extends TaskDefaults {
  /** Tasks that must finish first: one reference or a list. */
  upstream?: TaskRef<unknown> | ReadonlyArray<TaskRef<unknown>>;
}

export interface BashOptions extends TaskOptions {
  /** A bash command, templated with nunjucks: {{ conf.x }}, {{ run_id }}, {{ outputs.task_id }}, {{ x | shquote }}. */
  command: string;
  env?: Record<string, string>;
  cwd?: string;
}

export interface NodeOptions<Conf, T> extends TaskOptions {
  run: (ctx: TaskContext<Conf>) => T | Promise<T>;
}

export type NodeTaskFn = (ctx: TaskContext<never>) => unknown;
/** Any function of a DAG file the worker calls: a node task, a callback, a trigger's conf or items. */
export type DagFunction = (ctx: never) => unknown;

export const DEFAULT_MAX_ITEMS = 10_000;

export interface BranchOptions<Conf> extends TaskOptions {
  /**
   * Chooses which direct downstream tasks run: a task reference or id, a list of them, or null/[] to
   * skip them all. The tasks not chosen are skipped, and their downstream follows the trigger rules.
   */
  run: (ctx: TaskContext<Conf>) => BranchChoice | Promise<BranchChoice>;
}

/** A task that runs in a container on the worker's Docker engine; see src/engine/operators/docker.ts. */
export interface DockerOptions extends TaskOptions {
  /** Image reference; an untagged name means `:latest`. */
  image: string;
  /** A string runs with `/bin/sh -c` (the Dockerfile's shell form); an array is the exact argv. Templated. */
  command?: string | string[];
  /** Replaces the image's entrypoint. */
  entrypoint?: string | string[];
  /** Environment of the container; values are templated. */
  env?: Record<string, string>;
  /** Bind mounts and named volumes as the docker CLI writes them: `/host/path:/in/container[:ro]`, `vol:/data`. */
  binds?: string[];
  /** CPUs the container may use, e.g. 0.5 or 2. */
  cpus?: number;
  /** Memory limit: bytes or `512m`, `2g`. */
  memory?: string | number;
  /** Size of /dev/shm: bytes or `1g`. */
  shmSize?: string | number;
  /** `bridge` (the engine's default), `host`, `none` or a network name. */
  networkMode?: string;
  /** `uid[:gid]` or a user name known to the image. */
  user?: string;
  workingDir?: string;
  /** missing (default): pull when the image is not on the engine; always; never. */
  pullPolicy?: 'missing' | 'always' | 'never';
  /** Key of a variable holding registry credentials (`user:password` or JSON); default: the Docker config. */
  registryAuthVariable?: string;
  /** The engine: unix:///path, tcp://host:port; default DOCKER_HOST or the local socket. */
  dockerHost?: string;
  /** GPUs: a count, 'all', or device ids; the worker assigns specific devices when it manages its GPUs. */
  gpus?: number | 'all' | string[];
  /** The container runtime, e.g. 'nvidia'. */
  runtime?: string;
  /** What the task returns: the last stdout line (default), all of stdout, or nothing. */
  output?: 'last_line' | 'all' | 'none';
  /** Keep the container after it ends (it is removed by default, after its logs and exit code are read). */
  keepContainer?: boolean;
  /** Seconds between SIGTERM and SIGKILL when the task is stopped (default 1). */
  stopTimeout?: number;
  /** Where the task's host temp dir appears in the container (default /tmp/airtasks; env AIRTASKS_TMP_DIR); false: none. */
  tmpDir?: string | false;
  /** Variables as files: keys (one file per key under variablesMountPoint, named after the key) or key -> path. */
  variables?: string[] | Record<string, string>;
  /** Folder the variable files appear in when `variables` is a list (default /run/variables). */
  variablesMountPoint?: string;
  /** Extra container labels (the airtasks.* labels are always set). */
  labels?: Record<string, string>;
  /** Merged last into HostConfig (e.g. { Runtime: 'nvidia', ShmSize: 8589934592 }); Binds are appended. */
  hostConfig?: Record<string, unknown>;
  /** Merged last into the create-container request; may override Cmd, Entrypoint, Env ... */
  createOptions?: Record<string, unknown>;
}

/** The DockerOptions that are the docker operator's arguments (the rest are task options). */
const DOCKER_ARGS = [
  'image',
  'command',
  'entrypoint',
  'env',
  'binds',
  'cpus',
  'memory',
  'shmSize',
  'networkMode',
  'user',
  'workingDir',
  'pullPolicy',
  'registryAuthVariable',
  'dockerHost',
  'gpus',
  'runtime',
  'output',
  'keepContainer',
  'stopTimeout',
  'tmpDir',
  'variables',
  'variablesMountPoint',
  'labels',
  'hostConfig',
  'createOptions',
] as const satisfies ReadonlyArray<keyof DockerOptions>;

export class TaskRef<T> {
  declare readonly __output?: T;
  /** @internal */
  readonly upstreamIds = new Set<string>();

  constructor(
    readonly dag: Dag<never>,
    readonly id: string,
    /** @internal */ readonly spec: Omit<SerializedTask, 'upstream'>,
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
      rc[event] = this.callbackSpec(cb, functionKey(null, event), `${event} of DAG "${id}"`);
    }
    this.runCallbacks = rc;
  }

  /** Stores a callback's function (if it is one) and returns its code-free form. */
  private callbackSpec(cb: Callback, key: string, what: string): CallbackSpec {
    if (typeof cb === 'string') {
      if (cb.trim() === '') throw new DagValidationError(`${what}: a bash callback needs a command`, this.id);
      return { bash: cb };
    }
    if (typeof cb !== 'function') {
      throw new DagValidationError(`${what} must be a bash command (string) or a function`, this.id);
    }
    this.functions.set(key, cb);
    return { node: cb.toString() };
  }

  /** Starts one run of another DAG; the output is the started run's id. */
  triggerDag(id: string, opts: TriggerDagOptions<Conf>): TaskRef<string> {
    const args: Record<string, unknown> = { ...this.triggerArgs(id, opts) };
    if (typeof opts.conf === 'function') args.confSource = opts.conf.toString();
    else if (opts.conf !== undefined) args.conf = this.jsonArg(id, 'conf', opts.conf);
    const ref = this.task<string>(id, 'trigger_dag', args, opts);
    if (typeof opts.conf === 'function') this.functions.set(id, opts.conf as DagFunction);
    return ref;
  }

  /** Starts one run of another DAG per item; the output is the list of run ids, in item order. */
  multiTrigger(id: string, opts: MultiTriggerOptions<Conf>): TaskRef<string[]> {
    const args: Record<string, unknown> = { ...this.triggerArgs(id, opts) };
    const maxItems = opts.maxItems ?? DEFAULT_MAX_ITEMS;
    if (!Number.isInteger(maxItems) || maxItems < 1) {
      throw new DagValidationError(
        `task "${id}" in DAG "${this.id}": maxItems must be an integer >= 1`,
        this.id,
      );
    }
    args.maxItems = maxItems;
    const items = opts.items as unknown;
    let fn: DagFunction | undefined;
    if (typeof items === 'function') {
      fn = items as DagFunction;
      args.itemsSource = items.toString();
    } else if (items !== null && typeof items === 'object' && Symbol.iterator in items) {
      // A generator can be read only once, and the worker keeps the imported DAG module for many runs:
      // read it now, so every run (and every retry) sees the same items.
      args.items = this.jsonArg(id, 'items', [...(items as Iterable<unknown>)]);
    } else {
      throw new DagValidationError(
        `task "${id}" in DAG "${this.id}": multiTrigger needs items: a list, a generator, or a function returning one (got ${items === undefined ? 'nothing' : items === null ? 'null' : typeof items})`,
        this.id,
      );
    }
    const ref = this.task<string[]>(id, 'multi_trigger', args, opts);
    if (fn) this.functions.set(id, fn);
    return ref;
  }

  private triggerArgs(id: string, opts: TriggerDagOptions<Conf> | MultiTriggerOptions<Conf>) {
    checkId('task', id);
    try {
      checkId('DAG', opts.dagId);
    } catch (err) {
      throw new DagValidationError(
        `task "${id}" in DAG "${this.id}": target ${(err as Error).message}`,
        this.id,
      );
    }
    return {
      dagId: opts.dagId,
      waitForCompletion: opts.waitForCompletion ?? false,
      pollIntervalMs: toMs(opts.pollInterval ?? '2s', 'pollInterval'),
    };
  }

  private jsonArg(taskId: string, name: string, v: unknown): unknown {
    let json: string | undefined;
    try {
      json = JSON.stringify(v);
    } catch {
      json = undefined;
    }
    if (json === undefined) {
      throw new DagValidationError(
        `task "${taskId}" in DAG "${this.id}": ${name} must be JSON data`,
        this.id,
      );
    }
    return JSON.parse(json) as unknown;
  }

  bash(id: string, opts: BashOptions): TaskRef<string> {
    if (typeof opts.command !== 'string' || opts.command.trim() === '') {
      throw new DagValidationError(
        `task "${id}" in DAG "${this.id}": bash needs a non-empty command`,
        this.id,
      );
    }
    const args: Record<string, unknown> = { command: opts.command };
    if (opts.env) args.env = opts.env;
    if (opts.cwd) args.cwd = opts.cwd;
    return this.task<string>(id, 'bash', args, opts);
  }

  node<T>(id: string, opts: NodeOptions<Conf, T>): TaskRef<Awaited<T>> {
    if (typeof opts.run !== 'function') {
      throw new DagValidationError(`task "${id}" in DAG "${this.id}": node needs a run function`, this.id);
    }
    const ref = this.task<Awaited<T>>(id, 'node', { source: opts.run.toString() }, opts);
    this.functions.set(id, opts.run as DagFunction);
    return ref;
  }

  /**
   * A node task that chooses which of its direct downstream tasks run (Airflow's BranchPythonOperator);
   * its output is the list of chosen task ids. A task that joins the branches again typically uses the
   * trigger rule `none_failed_min_one_success`.
   */
  branch(id: string, opts: BranchOptions<Conf>): TaskRef<string[]> {
    if (typeof opts.run !== 'function') {
      throw new DagValidationError(`task "${id}" in DAG "${this.id}": branch needs a run function`, this.id);
    }
    const ref = this.task<string[]>(id, BRANCH_OPERATOR, { source: opts.run.toString() }, opts);
    this.functions.set(id, opts.run as NodeTaskFn);
    return ref;
  }

  docker(id: string, opts: DockerOptions): TaskRef<unknown> {
    if (typeof opts.image !== 'string' || opts.image.trim() === '') {
      throw new DagValidationError(`task "${id}" in DAG "${this.id}": docker needs an image`, this.id);
    }
    const args: Record<string, unknown> = {};
    for (const k of DOCKER_ARGS) if (opts[k] !== undefined) args[k] = opts[k];
    return this.task<unknown>(id, 'docker', args, opts);
  }

  /** Adds a task of any registered operator; the building block for custom operators. */
  task<T>(id: string, operator: string, args: Record<string, unknown>, opts: TaskOptions = {}): TaskRef<T> {
    checkId('task', id);
    if (this.tasks.has(id))
      throw new DagValidationError(`duplicate task id "${id}" in DAG "${this.id}"`, this.id);
    const d = { ...this.options.defaults, ...stripUndefined(opts) };
    const queue = checkId('queue', d.queue ?? DEFAULT_QUEUE);
    const ref = new TaskRef<T>(this as unknown as Dag<never>, id, {
      taskId: id,
      operator,
      queue,
      retries: d.retries ?? 0,
      retryDelayMs: toMs(d.retryDelay ?? '5s', 'retryDelay'),
      retryExponentialBackoff: d.retryExponentialBackoff ?? false,
      maxRetryDelayMs: toMs(d.maxRetryDelay ?? '1h', 'maxRetryDelay'),
      timeoutMs: d.timeout === undefined ? null : toMs(d.timeout, 'timeout'),
      triggerRule: (d.triggerRule ?? 'all_success') as TriggerRule,
      priorityWeight: d.priorityWeight ?? 1,
      args,
    });
    if (d.poolSlots !== undefined && d.pool === undefined)
      throw new DagValidationError(`task "${id}" in DAG "${this.id}": poolSlots needs a pool`, this.id);
    if (d.pool !== undefined) {
      const spec = ref.spec as { pool?: string; poolSlots?: number };
      spec.pool = checkId('pool', d.pool);
      spec.poolSlots = d.poolSlots ?? 1;
    }
    if (d.weightRule !== undefined) {
      if (!WEIGHT_RULES.includes(d.weightRule))
        throw new DagValidationError(
          `task "${id}" in DAG "${this.id}": unknown weightRule "${d.weightRule}" (one of ${WEIGHT_RULES.join(', ')})`,
          this.id,
        );
      this.weightRules.set(id, d.weightRule);
    }
    const callbacks: TaskCallbacks = {};
    for (const event of TASK_CALLBACK_EVENTS) {
      const cb = d[event];
      if (cb !== undefined)
        callbacks[event] = this.callbackSpec(cb, functionKey(id, event), `${event} of task "${id}"`);
    }
    if (Object.keys(callbacks).length > 0) (ref.spec as { callbacks?: TaskCallbacks }).callbacks = callbacks;
    // Upstreams are checked before the task is registered, so a refused call leaves the DAG unchanged.
    if (opts.upstream) ref.setUpstream(opts.upstream as TaskRef<unknown>);
    this.tasks.set(id, ref as TaskRef<unknown>);
    return ref;
  }

  /** The code-free form the store keeps. Throws DagValidationError if the DAG is not valid. */
  serialize(fileloc = ''): SerializedDag {
    const s: SerializedDag = {
      dagId: this.id,
      description: this.options.description ?? '',
      fileloc,
      tags: this.options.tags ?? [],
      tasks: [...this.tasks.values()].map((t) => ({ ...t.spec, upstream: [...t.upstreamIds].sort() })),
    };
    // Only tasks with a weightRule other than 'absolute' change, so other DAGs keep their hash.
    if (this.weightRules.size > 0 && !findCycle(s.tasks))
      s.tasks = applyWeightRules(s.tasks, this.weightRules);
    // Only set keys are written, so DAGs without these options keep the hash they always had.
    if (this.schedule) s.schedule = this.schedule;
    if (this.options.maxActiveRuns !== undefined) s.maxActiveRuns = this.options.maxActiveRuns;
    if (this.options.maxActiveTasks !== undefined) s.maxActiveTasks = this.options.maxActiveTasks;
    // Only when set, so that DAGs without it keep the hash they had.
    if (this.options.runTimeout !== undefined) s.runTimeoutMs = toMs(this.options.runTimeout, 'runTimeout');
    // Only present when used, so the hash of a DAG without them does not change.
    if (this.paramsSchema) s.params = this.paramsSchema;
    if (this.runCallbacks) s.runCallbacks = this.runCallbacks;
    validateDag(s);
    return s;
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

/** Every DAG a module exports: directly, as the default export, or inside an exported array. */
export function dagsOfModule(mod: Record<string, unknown>): Dag<unknown>[] {
  const found = new Set<Dag<unknown>>();
  const scan = (m: Record<string, unknown>) => {
    for (const v of Object.values(m)) {
      if (isDag(v)) found.add(v);
      else if (Array.isArray(v)) for (const x of v) if (isDag(x)) found.add(x);
    }
  };
  scan(mod);
  // A .ts file outside a "type": "module" package is compiled to CommonJS: importing it gives the whole
  // exports object as `default` (so `export default d` arrives as `default.default`).
  const inner = mod.default as Record<string, unknown> | undefined;
  if (inner && typeof inner === 'object' && !isDag(inner) && inner.__esModule === true) scan(inner);
  return [...found];
}
