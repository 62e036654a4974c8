/**
 * Claims a worker holds in the database without knowing: the claim committed, its answer was lost with the
 * connection. They are given back as lost tries, so they run again instead of staying 'running' forever
 * behind a live heartbeat.
 */
import type { Logger } from '../../core/logger.js';
import { lostTry } from '../lost-try.js';
import type { Queryable } from '../store/db.js';
import { runningClaims } from '../store/recovery.js';
import { finishTry } from '../store/results.js';
import type { HeldTries } from './held-tries.js';

/** Gives back this worker's orphaned claims; how many it gave back. */
export async function releaseOrphanedClaims(
  db: Queryable,
  eventsChannel: string,
  workerId: string,
  held: HeldTries,
  log: Logger,
): Promise<number> {
  const claims = await runningClaims(db, workerId);
  let released = 0;
  for (const o of claims) {
    // Judged now that the answer is here, not when the question was asked: a claim that committed while
    // the question waited has its answer by now, and giving it back would run the task twice at once.
    if (held.running.has(o.token) || held.claiming.has(o.token)) continue;
    const ok = await finishTry(
      db,
      o,
      o.token,
      lostTry(`worker ${workerId} lost the answer to its claim (database connection lost); run again`),
      eventsChannel,
    );
    if (!ok) continue;
    released++;
    log.warn({ runId: o.runId, taskId: o.taskId, try: o.tryNumber }, 'orphaned claim given back');
  }
  return released;
}
