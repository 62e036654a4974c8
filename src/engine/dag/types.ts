/** The serialised, code-free form of a DAG: what the store keeps and the scheduler reads. */

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
  priorityWeight: number;
  /** Operator arguments; JSON only. Node tasks carry the function's source here so code changes change the hash. */
  args: Record<string, unknown>;
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
}

export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h'}`;

export interface TaskDefaults {
  queue?: string;
  retries?: number;
  retryDelay?: Duration;
  retryExponentialBackoff?: boolean;
  maxRetryDelay?: Duration;
  timeout?: Duration;
  triggerRule?: TriggerRule;
  priorityWeight?: number;
}
