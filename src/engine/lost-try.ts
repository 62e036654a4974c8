/**
 * A try lost to the machinery rather than to the task: its worker died or stopped, its process host was
 * killed, or the answer to its claim was lost with the database connection. Such a try is run again at once
 * and does not count against the task's retries, up to FREE_LOST_TRIES lost tries (then a loss counts, so
 * a task that kills its worker every time fails instead of looping).
 */
import type { TryResult } from './store/results.js';

/** Tries lost with their worker (or its process host) that are re-run without counting against retries. */
export const FREE_LOST_TRIES = 3;

/** The result that gives a lost try back: queued again at once, not counted as a failure. */
export function lostTry(error: string, exitCode: number | null = null): TryResult {
  return {
    state: 'up_for_retry',
    exitCode,
    output: null,
    error,
    retryInMs: 0,
    countsAsFailure: false,
    lost: true,
  };
}
