/**
 * The DAG authoring API that DAG files import from 'airtasks'.
 *
 *   const d = dag('example', { defaults: { retries: 1 } });
 *   const a = d.bash('a', { command: 'echo {{ conf.name }}' });
 *   const b = d.node('b', { upstream: a, run: (ctx) => ctx.output(a).length });
 *   export default d;
 */
import { toMs } from './duration.js';
import type { TaskContext } from './context.js';
import { checkId, DagValidationError, validateDag } from './validate.js';
import { BRANCH_OPERATOR, type BranchChoice } from './branch.js';
import { normalizeSchedule, type ScheduleOptions } from './schedule.js';
import type {
  Duration,
  SerializedDag,
  SerializedSchedule,
  SerializedTask,
  TaskDefaults,
  TriggerRule,
} from './types.js';

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
  /** @internal Node task functions by task id; never serialised. */
  readonly functions = new Map<string, NodeTaskFn>();
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
    this.functions.set(id, opts.run as NodeTaskFn);
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
    // Only set keys are written, so DAGs without these options keep the hash they always had.
    if (this.schedule) s.schedule = this.schedule;
    if (this.options.maxActiveRuns !== undefined) s.maxActiveRuns = this.options.maxActiveRuns;
    if (this.options.maxActiveTasks !== undefined) s.maxActiveTasks = this.options.maxActiveTasks;
    // Only when set, so that DAGs without it keep the hash they had.
    if (this.options.runTimeout !== undefined) s.runTimeoutMs = toMs(this.options.runTimeout, 'runTimeout');
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
