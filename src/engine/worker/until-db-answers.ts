/** Database steps of a claimed try that wait out a lost connection: that is not the task's failure. */
import { backoffMs, sleep } from '../../core/backoff.js';
import type { Logger } from '../../core/logger.js';
import { isConnectionError } from '../store/db.js';

/**
 * Runs a database step of a claimed try, retrying while the connection is lost; other errors and an
 * aborted try (claim lost, shutdown) end the wait.
 */
export async function untilDbAnswers<T>(
  what: string,
  fn: () => Promise<T>,
  signal: AbortSignal,
  log: Logger,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isConnectionError(err) || signal.aborted) throw err;
      log.warn({ err: (err as Error).message, attempt }, `${what} failed: database unreachable; retrying`);
      await sleep(backoffMs(attempt, 200));
    }
  }
}
