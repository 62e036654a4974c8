/** The options DAG files give dag() and each kind of task. */
import type { TriggerRule, WeightRule } from '../../core/dag-model.js';
import type { Duration } from '../../core/duration.js';
import type { BranchChoice } from './branch.js';
import type { TaskRef } from './builder.js';
import type { CallbackContext, TaskContext } from './context.js';
import type { ParamsSpec } from './params.js';
import type { ScheduleOptions } from './schedule.js';

/** A templated bash command, or a function run in the worker with the callback's context. */
export type Callback = string | ((ctx: CallbackContext) => unknown);

export interface TaskDefaults {
  queue?: string;
  retries?: number;
  retryDelay?: Duration;
  retryExponentialBackoff?: boolean;
  maxRetryDelay?: Duration;
  timeout?: Duration;
  triggerRule?: TriggerRule;
  priorityWeight?: number;
  /**
   * How the weight the scheduler orders by is computed: 'absolute' (the task's own priorityWeight, the
   * default), 'downstream' (plus every task downstream of it, so work that unblocks more goes first) or
   * 'upstream' (plus every task upstream of it, so runs that are further along finish first).
   */
  weightRule?: WeightRule;
  /** A pool (created with `airtasks pools set`) whose slots the task takes while queued or running. */
  pool?: string;
  /** How many of the pool's slots the task takes (default 1). */
  poolSlots?: number;
  /** Runs after the task's last try failed: a bash command (templated) or a function. */
  onFailure?: Callback;
  /** Runs after the task succeeded. */
  onSuccess?: Callback;
  /** Runs after a failed try that will be retried. */
  onRetry?: Callback;
}

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

export interface TaskOptions extends TaskDefaults {
  /** Tasks that must finish first: one reference or a list. */
  upstream?: TaskRef<unknown> | ReadonlyArray<TaskRef<unknown>>;
  /**
   * GPUs: a count, 'all', or device ids ('0', 'GPU-<uuid>'). The worker lends the task specific devices,
   * never shared with another task; a bash task sees only them (CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES,
   * AIRTASKS_GPUS), a node task reads them as ctx.gpus. A request its worker cannot meet fails the try.
   */
  gpus?: number | 'all' | string[];
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

export interface BranchOptions<Conf> extends TaskOptions {
  /**
   * Chooses which direct downstream tasks run: a task reference or id, a list of them, or null/[] to
   * skip them all. The tasks not chosen are skipped, and their downstream follows the trigger rules.
   */
  run: (ctx: TaskContext<Conf>) => BranchChoice | Promise<BranchChoice>;
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
