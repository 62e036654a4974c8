/**
 * A thread's side of the batches the pool gives it (user-code-thread.ts): their calls run in order, one at a
 * time, each taken by compare-and-swap on its flag, and the thread's state (ThreadWords' STATE) goes back to
 * IDLE once the last one is done or taken back. The pool (another thread) changes the same words at any
 * moment, so each change here is a compare-and-swap from a state this thread owns; kept apart from the
 * thread's messages so that tests can try the pool's moves between any two of these steps.
 */
import {
  BEGUN,
  DONE,
  QUEUED,
  SLOT_IDLE,
  SLOT_POOL,
  STATE,
  type CallBatch,
  type FromThread,
} from './thread-protocol.js';
import type { UserCall } from './user-code.js';

export interface BatchCalls {
  /**
   * Runs call `id` and reports its end to the worker; `idle()`, asked just before, says whether this thread
   * is IDLE from then on. Resolves to what it said.
   */
  run(call: UserCall, id: number, idle: () => boolean): Promise<boolean>;
  /** Tells the pool. */
  post(m: FromThread): void;
}

export class ThreadBatches {
  /** Calls given and not yet taken or skipped, in order. */
  private readonly queue: Array<{ batch: CallBatch; i: number }> = [];
  private draining = false;

  constructor(
    private readonly ints: Int32Array,
    private readonly calls: BatchCalls,
  ) {}

  /** A batch from the pool, which made this thread POOL to give it. */
  give(batch: CallBatch) {
    for (let i = 0; i < batch.calls.length; i++) this.queue.push({ batch, i });
    void this.drain();
  }

  /** Drops the calls at the head of the queue that the pool took back; when none is left, this thread is IDLE. */
  private drained(): boolean {
    const q = this.queue;
    while (q.length > 0 && Atomics.load(q[0]!.batch.flags, q[0]!.i) !== QUEUED) q.shift();
    return q.length === 0 && Atomics.compareExchange(this.ints, STATE, SLOT_POOL, SLOT_IDLE) === SLOT_POOL;
  }

  private async drain() {
    if (this.draining) return;
    this.draining = true;
    /**
     * Whether the last call run made this thread IDLE: the state is no longer this batch's then, the pool
     * may already have taken the thread for its next batch (whose message is on its way).
     */
    let idle = false;
    while (this.queue.length > 0) {
      const { batch, i } = this.queue.shift()!;
      batch.began[i] = performance.timeOrigin + performance.now();
      // Taken back by the pool (stopped, or moved off this thread while another call held it): skip it.
      if (Atomics.compareExchange(batch.flags, i, QUEUED, BEGUN) !== QUEUED) continue;
      const { id, call } = batch.calls[i]!;
      idle = await this.calls.run(call, id, () => this.drained());
      Atomics.store(batch.flags, i, DONE);
      if (idle) this.calls.post({ t: 'idle' });
    }
    this.draining = false;
    // The batch's last calls were taken back: idle without a call to say so.
    if (!idle && Atomics.compareExchange(this.ints, STATE, SLOT_POOL, SLOT_IDLE) === SLOT_POOL)
      this.calls.post({ t: 'idle' });
  }
}
