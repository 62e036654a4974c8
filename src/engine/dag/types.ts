import type { TriggerRule, WeightRule } from '../../core/dag-model.js';
import type { Duration } from '../../core/duration.js';
import type { CallbackContext } from './context.js';

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

/** A templated bash command, or a function run in the worker with the callback's context. */
export type Callback = string | ((ctx: CallbackContext) => unknown);
