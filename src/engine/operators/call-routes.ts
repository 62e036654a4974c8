/**
 * Which way the worker sends a DAG-file function's call to its process host: straight to a thread that said
 * it was idle after its last call of the same file, or queued behind the short calls the thread runs now
 * (one hop, thread-protocol.ts), or through the host's pool, which picks a thread. A file's calls take the
 * pool's way while any of them is there, so the pool's queue is served in order and a busy thread's calls
 * are not overtaken.
 */

/**
 * How long after a thread said it was idle a call may still be sent to it directly: well inside the time
 * after which the pool ends an idle thread (IDLE_MS in process-host-threads.ts).
 */
const IDLE_TRUST_MS = 20_000;
/**
 * A thread running a file's direct calls takes more of them behind those (one message each, queued in the
 * thread, not a hop through the host's main thread), while the oldest was sent less than this long ago and
 * at most MAX_QUEUED wait: a burst of short calls, not calls stuck behind a long one.
 */
const QUEUE_WHILE_MS = 20;
const MAX_QUEUED = 16;
/**
 * How long a direct call may hold its thread, or wait in it, before the thread's calls not yet taken are
 * taken back (they go through the pool, which starts threads for calls held long: GROW_AFTER_MS).
 */
const TAKE_BACK_MS = 150;

export class CallRoutes {
  /** Threads that said they were idle after a call of a file, and when: file -> thread -> time. */
  private readonly idleThreads = new Map<string, Map<number, number>>();
  /** Calls of each file sent through the pool and not done. */
  private readonly pooled = new Map<string, number>();
  /** The thread each file's last direct call went to. */
  private readonly home = new Map<string, number>();
  /** Direct calls sent to each thread and not done, oldest first: call id -> when sent. */
  private readonly inFlight = new Map<number, Map<number, number>>();
  /** Threads whose queued calls are being taken back: none is sent to them until they say they are idle. */
  private readonly closed = new Set<number>();
  /** The sequence number of the last call sent to each thread directly (thread-protocol.ts' SEQ). */
  private readonly seqs = new Map<number, number>();
  /** Threads watched for calls queued behind a long one. */
  private readonly watched = new Set<number>();
  /** How many calls went straight to a thread. */
  directCount = 0;

  /**
   * `takeBack`: has the host take back the calls sent to the thread up to that sequence number that it has
   * not taken (they are then sent through the pool).
   */
  constructor(
    private readonly isOpen: (thread: number) => boolean,
    private readonly takeBack: (thread: number, upTo: number) => void,
  ) {}

  /**
   * The thread to send call `id` of `file` to, or null (through the pool): one idle after a call of the file,
   * else the one running the file's direct calls while they are young and few.
   */
  direct(file: string, id: number): { thread: number; seq: number } | null {
    if (this.pooled.get(file)) return null;
    const now = performance.now();
    const threads = this.idleThreads.get(file);
    for (const [thread, since] of threads ?? []) {
      this.forget(thread);
      if (now - since < IDLE_TRUST_MS && this.isOpen(thread)) return this.sent(file, thread, id, now);
    }
    const thread = this.home.get(file);
    const queued = thread === undefined ? undefined : this.inFlight.get(thread);
    if (thread === undefined || !queued?.size || this.closed.has(thread) || !this.isOpen(thread)) return null;
    const [oldest] = queued.values();
    if (queued.size >= MAX_QUEUED || now - oldest! >= QUEUE_WHILE_MS) return null;
    return this.sent(file, thread, id, now);
  }

  /** A direct call, numbered (a number lost with a send that fails is lost with its thread's channel). */
  private sent(file: string, thread: number, id: number, now: number) {
    this.directCount++;
    this.home.set(file, thread);
    const calls = this.inFlight.get(thread) ?? new Map<number, number>();
    this.inFlight.set(thread, calls.set(id, now));
    const seq = (this.seqs.get(thread) ?? 0) + 1;
    this.seqs.set(thread, seq);
    this.watch(thread);
    return { thread, seq };
  }

  /**
   * Calls queued in a thread behind one that holds it long, or unread while the thread is stuck, are taken
   * back (and then go through the pool, which gives them other threads): as the pool does with its batches.
   */
  private watch(thread: number) {
    if (this.watched.has(thread)) return;
    this.watched.add(thread);
    setTimeout(() => {
      this.watched.delete(thread);
      if (this.stale(thread)) {
        // Closed to direct calls until it says it is idle.
        this.closed.add(thread);
        this.takeBack(thread, this.seqs.get(thread) ?? 0);
      } else if (this.watching(thread)) this.watch(thread);
    }, TAKE_BACK_MS / 3).unref();
  }

  /** Direct call `id` to `thread` is done there, or went elsewhere. */
  directDone(thread: number, id: number) {
    const calls = this.inFlight.get(thread);
    if (!calls?.delete(id) || calls.size > 0) return;
    this.inFlight.delete(thread);
  }

  /**
   * Whether the oldest direct call not done of `thread` was sent TAKE_BACK_MS ago or more (it holds the
   * thread, or waits behind something that does): the calls it has not taken are to be taken back.
   */
  private stale(thread: number): boolean {
    const calls = this.inFlight.get(thread);
    if (!calls?.size || this.closed.has(thread)) return false;
    const [oldest] = calls.values();
    return performance.now() - oldest! >= TAKE_BACK_MS;
  }

  /** Whether `thread` is to be watched: direct calls not done, and not closed. */
  private watching(thread: number): boolean {
    return (this.inFlight.get(thread)?.size ?? 0) > 0 && !this.closed.has(thread);
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
    this.closed.delete(thread);
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

  /** The thread has ended. */
  ended(thread: number) {
    this.forget(thread);
    this.inFlight.delete(thread);
    this.closed.delete(thread);
    this.seqs.delete(thread);
    for (const [file, t] of this.home) if (t === thread) this.home.delete(file);
  }
}
