/**
 * Zombies: running tries whose worker stopped heartbeating. Each is ended as lost and run again; past the
 * free lost tries, a loss counts like a failure against the task's retries.
 */
import type { EngineEventStream } from '../../core/events.js';
import type { Logger } from '../../core/logger.js';
import { type VersionCache, taskOf } from '../dag/versions.js';
import { lostTry } from '../lost-try.js';
import type { Db } from '../store/db.js';
import { findZombies } from '../store/recovery.js';
import { type TryResult, finishTry } from '../store/results.js';
import { retryDelayMs } from './decide.js';

export interface ZombiesDeps {
  db: Db;
  versions: VersionCache;
  log: Logger;
  /** A running task whose worker has not heartbeated for this long is lost. */
  thresholdMs: number;
  /** Tries lost with their worker that are re-run without counting against the task's retries. */
  maxLostTries: number;
  stopping: AbortSignal;
  events: EngineEventStream;
}

export class Zombies {
  constructor(private readonly d: ZombiesDeps) {}

  /** Tries whose worker stopped heartbeating: re-run them (a lost try is not the task's failure). */
  async reap(): Promise<void> {
    const { db, log, thresholdMs: threshold } = this.d;
    if (this.d.stopping.aborted) return;
    try {
      for (const z of await findZombies(db, threshold)) {
        const dag = await this.d.versions.get(z.dagHash);
        const task = taskOf(dag, z.taskId);
        // A run callback (@...) runs after its run ended, so no scheduling pass would queue it again.
        const isRunCallback = z.taskId.startsWith('@');
        const freeRetry = !isRunCallback && z.lostTries < this.d.maxLostTries;
        const retryIn = freeRetry ? 0 : task ? retryDelayMs(task, z.failedTries) : null;
        const error = `worker ${z.workerId ?? '?'} lost: no heartbeat for ${threshold / 1000}s`;
        // Past the free ones, a lost try counts like a failure (and is still recorded as lost).
        const result: TryResult = freeRetry
          ? lostTry(error)
          : {
              state: retryIn !== null ? 'up_for_retry' : 'failed',
              exitCode: null,
              output: null,
              error,
              retryInMs: retryIn,
              countsAsFailure: true,
              lost: true,
            };
        const ok = await finishTry(db, z, z.token, result, db.channel('events'));
        if (!ok) continue;
        log.warn({ runId: z.runId, taskId: z.taskId, try: z.tryNumber, retry: retryIn !== null }, error);
        const ref = () => ({
          dagId: dag.dagId,
          runId: z.runId,
          taskId: z.taskId,
          tryNumber: z.tryNumber,
          workerId: z.workerId,
          queue: task?.queue ?? null,
          durationMs: null,
          error,
          at: new Date(),
        });
        if (result.state === 'up_for_retry') {
          const nextTryAt = new Date(Date.now() + (result.retryInMs ?? 0));
          this.d.events.emit('task.retried', () => ({ ...ref(), nextTryAt, lost: freeRetry }));
        } else this.d.events.emit('task.finished', () => ({ ...ref(), state: 'failed' as const }));
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'zombie check failed');
    }
  }
}
