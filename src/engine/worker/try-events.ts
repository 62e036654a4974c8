/**
 * The engine events of one try in a worker (core/events.ts): 'task.started' once its claim committed,
 * then 'task.finished' or 'task.retried' once its result is stored (none when the result was fenced out).
 */
import type { EngineEventStream, TryRef } from '../../core/events.js';
import type { TaskMessage } from '../../core/states.js';
import type { Claim } from '../store/claims.js';
import type { TryResult } from '../store/results.js';

export class TryEvents {
  private readonly t0 = performance.now();
  private queue: string | null = null;
  private told = false;

  constructor(
    private readonly events: EngineEventStream,
    private readonly workerId: string,
    private readonly m: TaskMessage,
    private readonly claim: Claim,
  ) {}

  /** The try starts (its task read from its DAG version, hence its queue). */
  started(queue: string | null) {
    this.queue = queue;
    this.told = true;
    this.events.emit('task.started', () => this.ref());
  }

  /** The try's result was stored (call only then: a result fenced out tells nothing). */
  ended(r: TryResult) {
    // A try that ended before its task was read (its DAG version unreadable) started all the same.
    if (!this.told) this.started(null);
    const durationMs = Math.round(performance.now() - this.t0);
    if (r.state === 'up_for_retry')
      this.events.emit('task.retried', () => ({
        ...this.ref(),
        durationMs,
        error: r.error ?? '',
        nextTryAt: new Date(Date.now() + (r.retryInMs ?? 0)),
        lost: !r.countsAsFailure,
      }));
    else
      this.events.emit('task.finished', () => ({
        ...this.ref(),
        state: r.state as 'success' | 'failed',
        durationMs,
        ...(r.error !== null ? { error: r.error } : {}),
      }));
  }

  private ref(): TryRef {
    const { m, claim } = this;
    return {
      dagId: claim.dagId,
      runId: m.runId,
      taskId: m.taskId,
      tryNumber: m.tryNumber,
      workerId: this.workerId,
      queue: this.queue,
      at: new Date(),
    };
  }
}
