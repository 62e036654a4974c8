/** The states of task instances and runs, and the message that stands for one try on a queue. */

export type TaskState =
  | 'none'
  | 'queued'
  | 'running'
  | 'success'
  | 'failed'
  | 'upstream_failed'
  | 'skipped'
  | 'up_for_retry'
  /** Stopped, or never started, because its run was cancelled or timed out. */
  | 'cancelled';

export const TERMINAL_TASK_STATES: readonly TaskState[] = [
  'success',
  'failed',
  'upstream_failed',
  'skipped',
  'cancelled',
];
/** States of a task that has not ended (and so can be cancelled). */
export const UNFINISHED_TASK_STATES: readonly TaskState[] = ['none', 'queued', 'up_for_retry', 'running'];

export type RunState = 'queued' | 'running' | 'success' | 'failed' | 'cancelled';
export const TERMINAL_RUN_STATES: readonly RunState[] = ['success', 'failed', 'cancelled'];

/** What a queue carries: one try of one task instance (stale or duplicate ones are ignored by claims). */
export interface TaskMessage {
  runId: string;
  taskId: string;
  tryNumber: number;
}
