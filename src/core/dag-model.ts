/** The serialised, code-free form of a DAG: what the store keeps, the scheduler reads and workers run. */
import type { GpuRequest } from './gpus.js';

export const TRIGGER_RULES = [
  'all_success',
  'all_failed',
  'all_done',
  'one_success',
  'one_failed',
  'none_failed',
  'none_failed_min_one_success',
  'none_skipped',
  'always',
] as const;
export type TriggerRule = (typeof TRIGGER_RULES)[number];

/**
 * The operators every worker has built in, as SerializedTask.operator names them. A custom operator
 * (defineOperator) may take none of these names: the worker would run the built-in in its place.
 */
export const BUILTIN_OPERATORS = [
  'bash',
  'node',
  'branch',
  'docker',
  'trigger_dag',
  'multi_trigger',
] as const;
export type BuiltinOperator = (typeof BUILTIN_OPERATORS)[number];

export const WEIGHT_RULES = ['absolute', 'downstream', 'upstream'] as const;
export type WeightRule = (typeof WEIGHT_RULES)[number];

export interface SerializedTask {
  taskId: string;
  operator: string;
  upstream: string[];
  queue: string;
  retries: number;
  retryDelayMs: number;
  retryExponentialBackoff: boolean;
  maxRetryDelayMs: number;
  timeoutMs: number | null;
  triggerRule: TriggerRule;
  /** The task's weight, after its DAG's weightRule: ready tasks with more weight are queued and delivered first. */
  priorityWeight: number;
  /** The pool whose slots the task takes while queued or running; absent: no pool. */
  pool?: string;
  /** Slots of the pool it takes (default 1); absent when the task has no pool. */
  poolSlots?: number;
  /**
   * The GPUs the task asks for: its worker lends it specific devices for the try. Absent when it asks for
   * none; a docker task keeps its request in args.gpus (its operator leases the devices itself).
   */
  gpus?: GpuRequest;
  /** Operator arguments; JSON only. Node tasks carry the function's source here so code changes change the hash. */
  args: Record<string, unknown>;
  /** Run by the worker after a try's result is stored; absent when the task has none. */
  callbacks?: TaskCallbacks;
}

/** A callback as stored: a templated bash command, or the source of a function of the DAG file. */
export type CallbackSpec = { bash: string } | { node: string };

export type TaskCallbackEvent = 'onSuccess' | 'onFailure' | 'onRetry';
export type RunCallbackEvent = 'onRunSuccess' | 'onRunFailure';
export type TaskCallbacks = Partial<Record<TaskCallbackEvent, CallbackSpec>>;

export interface RunCallbacks extends Partial<Record<RunCallbackEvent, CallbackSpec>> {
  /** The queue whose workers run them (the scheduler never runs user code). */
  queue: string;
}

export interface SerializedDag {
  dagId: string;
  description: string;
  /** Path of the defining file, relative to the dags folder. */
  fileloc: string;
  tags: string[];
  tasks: SerializedTask[];
  /** DagOptions.runTimeout; absent when the DAG has none. */
  runTimeoutMs?: number;
  /** JSON schema of the run's conf (DagOptions.params); absent when the DAG declares none. */
  params?: Record<string, unknown>;
  /** Run callbacks; absent when the DAG has none. */
  runCallbacks?: RunCallbacks;
  /** When the scheduler creates runs by itself; absent: manual (and triggered) runs only. */
  schedule?: SerializedSchedule;
  /** At most this many runs of the DAG running at once; more stay queued. Absent: no limit. */
  maxActiveRuns?: number;
  /** At most this many task instances of the DAG (all runs) queued or running at once. Absent: no limit. */
  maxActiveTasks?: number;
}

/** A DAG's schedule, normalised at parse time (dates as UTC ISO strings). */
export interface SerializedSchedule {
  /** Cron expression (5 fields, or 6 with seconds first) or a preset such as @daily. */
  cron: string;
  /** IANA time zone the cron expression is read in. */
  timezone: string;
  /** No interval starts before this instant. */
  startDate: string;
  /** No interval starts after this instant; null: no end. */
  endDate: string | null;
  /** Create a run for every interval missed since the last one (true) or only the latest (false). */
  catchup: boolean;
}
