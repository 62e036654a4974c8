/**
 * Which way the worker sends a DAG-file function's call to its process host: straight to a thread that said
 * it was idle after its last call of the same file (one hop, thread-protocol.ts), or through the host's
 * pool, which picks a thread. A file's calls take the pool's way while any of them is there, so the pool's
 * queue is served in order and a busy thread's calls are not overtaken.
 */

/**
 * How long after a thread said it was idle a call may still be sent to it directly: well inside the time
 * after which the pool ends an idle thread (IDLE_MS in process-host-threads.ts).
 */
const IDLE_TRUST_MS = 20_000;

export class CallRoutes {
  /** Threads that said they were idle after a call of a file, and when: file -> thread -> time. */
  private readonly idleThreads = new Map<string, Map<number, number>>();
  /** Calls of each file sent through the pool and not done. */
  private readonly pooled = new Map<string, number>();
  /** How many calls went straight to a thread. */
  directCount = 0;

  constructor(private readonly isOpen: (thread: number) => boolean) {}

  /** The thread to send a call of `file` to, or null (through the pool). The thread is busy from now on. */
  direct(file: string): number | null {
    const threads = this.pooled.get(file) ? undefined : this.idleThreads.get(file);
    if (!threads) return null;
    const now = performance.now();
    for (const [thread, since] of threads) {
      this.forget(thread);
      if (now - since < IDLE_TRUST_MS && this.isOpen(thread)) {
        this.directCount++;
        return thread;
      }
    }
    return null;
  }

  /** A call of `file` goes through the pool. */
  toPool(file: string) {
    this.pooled.set(file, (this.pooled.get(file) ?? 0) + 1);
  }

  /** A call of `file` that went through the pool is done. */
  poolCallDone(file: string) {
    const n = (this.pooled.get(file) ?? 1) - 1;
    if (n > 0) this.pooled.set(file, n);
    else this.pooled.delete(file);
  }

  /** The thread said it was idle after a call of `file`. */
  idle(thread: number, file: string) {
    if (!this.isOpen(thread)) return;
    const threads = this.idleThreads.get(file) ?? new Map<number, number>();
    this.idleThreads.set(file, threads.set(thread, performance.now()));
  }

  /** The thread is busy, or gone. */
  forget(thread: number) {
    for (const [file, threads] of this.idleThreads) {
      threads.delete(thread);
      if (threads.size === 0) this.idleThreads.delete(file);
    }
  }
}
