/**
 * Groups calls that arrive while a statement is in flight into one statement: a worker running many short
 * tasks at once claims and stores them in batches, so Postgres sees a few statements and commits instead
 * of one per task (the cost that bounded throughput). A lone call waits for nothing but the next turn of
 * the event loop. A batch that fails for any reason but a lost connection is run again item by item, so
 * one bad item (an output Postgres refuses, a deadlock with a cancel) never fails the others.
 */
import { isConnectionError } from '../store/db.js';

interface Pending<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (err: unknown) => void;
}

export class Batcher<I, O> {
  private queue: Array<Pending<I, O>> = [];
  private inFlight = 0;
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    /** Runs a batch; returns one output per item, in order. */
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly opts: { maxBatch?: number; maxInFlight?: number } = {},
  ) {}

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once every item added so far, and any added meanwhile, is settled (for a draining owner). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle() {
    return this.queue.length === 0 && this.inFlight === 0 && !this.scheduled;
  }

  private wakeIdle() {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private schedule() {
    if (this.scheduled || this.queue.length === 0 || this.inFlight >= (this.opts.maxInFlight ?? 2)) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush() {
    const batch = this.queue.splice(0, this.opts.maxBatch ?? 64);
    if (batch.length === 0) return this.wakeIdle();
    this.inFlight++;
    try {
      await this.settle(batch);
    } finally {
      this.inFlight--;
      this.schedule();
      this.wakeIdle();
    }
  }

  private async settle(batch: Array<Pending<I, O>>) {
    try {
      const out = await this.run(batch.map((p) => p.item));
      batch.forEach((p, i) => p.resolve(out[i]!));
    } catch (err) {
      if (batch.length === 1 || isConnectionError(err)) {
        for (const p of batch) p.reject(err);
        return;
      }
      await Promise.all(batch.map((p) => this.settle([p])));
    }
  }
}
