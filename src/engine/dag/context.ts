/** What a running task sees. Node tasks receive it as their argument; bash tasks get it as template variables. */

export interface TaskContext<Conf = Record<string, unknown>> {
  dagId: string;
  runId: string;
  taskId: string;
  tryNumber: number;
  /** The run's logical date (ISO 8601): the trigger time for manual runs. */
  logicalDate: string;
  /** The run's parameters (`trigger dag --conf`). */
  conf: Conf;
  /** Output of an upstream task, typed by its reference. Throws if the task is not a direct upstream. */
  output<T>(task: TaskRefLike<T> | string): T;
  /** Writes a line to this try's task log. */
  log(...args: unknown[]): void;
  /** Aborted when the task must stop (timeout, cancel, worker shutdown past its grace period). */
  signal: AbortSignal;
  /** Reads a variable; undefined when it is not set. */
  variable(key: string): Promise<string | undefined>;
  /**
   * The GPU devices lent to this try (nvidia-smi indexes or UUIDs), when the task asks for `gpus` on a
   * worker that manages its GPUs; else null. Use only these (e.g. pass `env` to a child process).
   */
  gpus: readonly string[] | null;
  /**
   * The environment a child process of the task should get on top of the worker's: the try's AIRTASKS_*
   * variables and, with gpus, CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES and AIRTASKS_GPUS.
   */
  env: Readonly<Record<string, string>>;
}

/** The minimal shape of a task reference, so TaskContext does not depend on the builder. */
export interface TaskRefLike<T> {
  readonly id: string;
  /** Phantom field carrying the output type; never set at runtime. */
  readonly __output?: T;
}

/** What a callback sees (task callbacks: the try that ended; run callbacks: the run that ended). */
export interface CallbackContext {
  event: 'onSuccess' | 'onFailure' | 'onRetry' | 'onRunSuccess' | 'onRunFailure';
  dagId: string;
  runId: string;
  /** The task, for task callbacks; null for run callbacks. */
  taskId: string | null;
  /** The try that ended, for task callbacks; null for run callbacks. */
  tryNumber: number | null;
  /** The task's state after the try (success, failed, up_for_retry) or the run's final state. */
  state: string;
  /** The try's error, or for a failed run its failed tasks and their errors; null on success. */
  error: string | null;
  conf: Record<string, unknown>;
  logicalDate: string;
  /** Writes a line to the callback's log (the try's task log, or the run callback's own log). */
  log(...args: unknown[]): void;
  /** Aborted when the callback runs too long or the worker shuts down. */
  signal: AbortSignal;
  variable(key: string): Promise<string | undefined>;
}
