/**
 * Long because the pool's choices (batches and their take-back, new threads for long calls, calls taken
 * from the worker directly, stops, a thread's end) work on one set of threads and are read together.
 *
 * The process host's threads for DAG-file functions (user-code-thread.ts). A thread runs one call at a time
 * and stays warm for its DAG files (it keeps their imported modules), so a call costs a few messages, not
 * an import. Calls waiting for a file's threads go to its idle ones in batches, one message each (a burst of
 * short calls then costs one wake-up of a thread, not one per call); a thread takes each call of its batch
 * with a compare-and-swap on shared memory, and the pool takes back the calls a thread has not begun when
 * its call has held it for a moment, or when it ends. If every thread of a file has been held by its call
 * for that moment (long or stuck calls, not a burst of short ones: a new thread costs an import) another
 * thread is given the file: an idle thread of other files, which imports it too (a thread, with its own
 * loader thread, costs some 40 MiB; one more module in a thread a few), else a new thread. No thread is
 * started before the first call: a host whose worker runs only commands and containers never holds one, and
 * each command it forks copies the page tables of the host's memory (its fork costs with the threads'). A
 * stopped call's thread is ended (Worker.terminate() interrupts even a synchronous loop); the other threads
 * carry on. A thread also takes calls from the worker directly while it is idle (thread-protocol.ts); the
 * pool sees such a call in the words it shares with the thread, and treats it as a batch's call (stops it,
 * starts another thread when it holds its thread long).
 */
import type { Worker } from 'node:worker_threads';
import { codeThread } from '../../core/code-thread.js';
import type { UserCall } from './user-code.js';
import {
  BEGUN,
  DONE,
  QUEUED,
  REVOKED,
  DIRECT_ID,
  SEQ,
  fileOf,
  newThreadWords,
  SLOT_DIRECT,
  SLOT_IDLE,
  SLOT_POOL,
  SLOT_RETIRED,
  STATE,
  STOPPED,
  threadWords,
  WANTED,
  type CallBatch,
  type ChannelAddress,
  type FromThread,
  type ThreadData,
  type ThreadWords,
  type ToThread,
} from './thread-protocol.js';

const THREAD = new URL('./user-code-thread.js', import.meta.url);

/**
 * How long a call must have held its thread before the calls queued behind it are taken back, and, when
 * every thread of its file is so held, another thread is started: short calls, even a burst of them on a
 * loaded machine, never start one (each costs an import of the DAG file); long or stuck ones do.
 */
const GROW_AFTER_MS = 150;
/** The most calls given to a thread in one batch. */
const MAX_BATCH = 32;
/** How long a stopped call's code gets to see its signal before its thread is ended. */
const STOP_GRACE_MS = 1000;
/** An idle thread is ended after this long, except the last one of its file. */
const IDLE_MS = 60_000;

/** What the pool tells the worker itself (a call's own lines and result go on its thread's channel). */
export interface ThreadEvents {
  /** It ended call `id` before any thread began it (stopped). */
  done(id: number, message: string): void;
  /** A thread ended; `began`: the calls it had begun and not reported done to the pool. */
  ended(thread: number, began: number[], message: string): void;
}

interface Waiting {
  id: number;
  call: UserCall;
}

interface Batch extends CallBatch {
  /** Calls of the batch neither done nor taken back. */
  open: Set<number>;
}

interface Slot {
  worker: Worker;
  /** Its id in the host, which names it on its channel. */
  thread: number;
  /** What it shares with the pool: its state, the worker's call it runs. */
  words: ThreadWords;
  /** The DAG files it serves (it keeps each one's module). */
  files: Set<string>;
  ready: boolean;
  /** The calls given to it; null when it is idle. */
  batch: Batch | null;
  /** Imports of its DAG files not yet done (or failed): a thread still importing is not added to. */
  importing: number;
  idleSince: number;
}

export class ThreadPool {
  private readonly slots = new Set<Slot>();
  /** Calls waiting for a thread, by file, in order. */
  private readonly waiting = new Map<string, Waiting[]>();
  /** The thread given each call, until the call is done or taken back. */
  private readonly running = new Map<number, Slot>();
  /**
   * Calls sent to a thread directly that were stopped before the pool saw them: the thread may yet hand
   * them to the pool.
   */
  private readonly stoppedEarly = new Map<number, { reason: string; at: number }>();
  /** Every thread until it exits, retired ones included, by its id. */
  private readonly byThread = new Map<number, Slot>();

  constructor(
    private readonly channel: ChannelAddress,
    private readonly events: ThreadEvents,
  ) {
    setInterval(() => this.trim(), IDLE_MS / 2).unref();
  }

  /** How many threads it holds. */
  get threadCount(): number {
    return this.slots.size;
  }

  call(id: number, call: UserCall) {
    const early = this.stoppedEarly.get(id);
    if (early) {
      this.stoppedEarly.delete(id);
      return this.events.done(id, `stopped: ${early.reason}`);
    }
    const file = fileOf(call);
    this.enqueue(file, [{ id, call }], false);
    this.pump(file);
    if (!this.waiting.get(file)?.length) return;
    // No thread of the file at all: start one now; else give the busy ones a moment.
    if (!this.threadsOf(file).length) this.grow(file);
    else this.watch(file);
  }

  private threadsOf(file: string): Slot[] {
    return [...this.slots].filter((s) => s.files.has(file));
  }

  private enqueue(file: string, calls: Waiting[], first: boolean) {
    if (calls.length === 0) return;
    let q = this.waiting.get(file);
    if (!q) this.waiting.set(file, (q = []));
    if (first) q.unshift(...calls);
    else q.push(...calls);
  }

  /** Files watched for threads held by long calls. */
  private readonly watched = new Set<string>();

  private watch(file: string) {
    if (this.watched.has(file)) return;
    this.watched.add(file);
    setTimeout(() => {
      this.watched.delete(file);
      const now = performance.timeOrigin + performance.now();
      const threads = this.threadsOf(file);
      // Calls queued behind a long call go back to wait for another thread.
      for (const s of threads) if (this.heldSince(s) <= now - GROW_AFTER_MS) this.takeBack(s);
      const q = this.waiting.get(file);
      if (q?.length) {
        // One thread warms up at a time: a burst of calls to a big file must not start a dozen imports.
        const warming = threads.some((s) => s.importing > 0);
        const allHeld = threads.every((s) => this.heldSince(s) <= now - GROW_AFTER_MS);
        if (allHeld && !warming) this.grow(file);
        this.pump(file);
      }
      if (this.waiting.get(file)?.length || threads.some((s) => this.hasQueued(s))) this.watch(file);
    }, GROW_AFTER_MS).unref();
  }

  /** When the call a thread runs began (Infinity: none, or only calls whose 'done' is on its way). */
  private heldSince(s: Slot): number {
    if (directOf(s) !== null) return s.words.began[0]!;
    const b = s.batch;
    if (!b) return Infinity;
    let since = Infinity;
    b.calls.forEach(({ id }, i) => {
      if (b.open.has(id) && Atomics.load(b.flags, i) === BEGUN) since = b.began[i]!;
    });
    return since;
  }

  private hasQueued(s: Slot): boolean {
    const b = s.batch;
    return !!b && b.calls.some(({ id }, i) => b.open.has(id) && Atomics.load(b.flags, i) === QUEUED);
  }

  /** Takes back the calls the thread has not begun; they wait again, first in line. */
  private takeBack(s: Slot) {
    const b = s.batch;
    if (!b) return;
    const back = new Map<string, Waiting[]>();
    b.calls.forEach((c, i) => {
      if (!b.open.has(c.id) || Atomics.compareExchange(b.flags, i, QUEUED, REVOKED) !== QUEUED) return;
      const file = fileOf(c.call);
      back.set(file, [...(back.get(file) ?? []), c]);
      this.closeCall(s, c.id);
    });
    for (const [file, calls] of back) this.enqueue(file, calls, true);
  }

  /** Closes the calls of the thread's batch that it has marked DONE. */
  private closeDone(s: Slot) {
    const b = s.batch;
    b?.calls.forEach(({ id }, i) => {
      if (b.open.has(id) && Atomics.load(b.flags, i) === DONE) this.closeCall(s, id);
    });
  }

  /** Call `id` is done with its thread (or taken back); a thread left with no call is idle. */
  private closeCall(s: Slot, id: number) {
    this.running.delete(id);
    if (!s.batch?.open.delete(id) || s.batch.open.size > 0) return;
    s.batch = null;
    s.idleSince = performance.now();
  }

  /**
   * Stops call `id`: one not begun is dropped; a running one is aborted, then its thread ended. `thread`: the
   * worker sent it to that thread directly (the pool may not have heard of it yet).
   */
  stop(id: number, reason: string, thread?: number) {
    const stopped = () => this.events.done(id, `stopped: ${reason}`);
    for (const q of this.waiting.values()) {
      const i = q.findIndex((w) => w.id === id);
      if (i >= 0) {
        q.splice(i, 1);
        return stopped();
      }
    }
    const slot = this.running.get(id) ?? this.directSlot(id, reason, thread);
    if (!slot) return;
    const b = slot.batch;
    if (directOf(slot) !== id) {
      if (!b) return;
      const i = b.calls.findIndex((c) => c.id === id);
      const was = Atomics.compareExchange(b.flags, i, QUEUED, REVOKED);
      if (was === QUEUED) {
        this.closeCall(slot, id);
        stopped();
        if (this.isFree(slot)) this.pumpAll(slot);
        return;
      }
      // Its result has gone to the worker: nothing to stop.
      if (was === DONE) return;
    }
    slot.worker.postMessage({ t: 'abort', id, reason } satisfies ToThread);
    // Never used again: whatever the call left running (timers, promises) must not meet the next call.
    Atomics.store(slot.words.ints, STATE, SLOT_RETIRED);
    this.slots.delete(slot);
    this.takeBack(slot);
    setTimeout(() => void slot.worker.terminate(), STOP_GRACE_MS).unref();
    // Its files keep a warm thread: a retry must not pay the import within its timeout.
    for (const file of slot.files) {
      if (!this.threadsOf(file).length) this.grow(file);
      else this.pump(file);
    }
  }

  /**
   * Takes back the worker's calls sent to `thread` up to sequence number `upTo` that it has not taken (SEQ):
   * returns the numbers taken back, from..to (none when from > to). A thread that has exited took none of
   * its calls that had not begun: the worker hears that from 'ended'.
   */
  takeBackDirect(thread: number, upTo: number): { from: number; to: number } {
    const slot = this.byThread.get(thread);
    if (!slot) return { from: 1, to: 0 };
    for (;;) {
      const settled = Atomics.load(slot.words.ints, SEQ);
      if (settled >= upTo) return { from: settled + 1, to: settled };
      if (Atomics.compareExchange(slot.words.ints, SEQ, settled, upTo) === settled)
        return { from: settled + 1, to: upTo };
    }
  }

  /**
   * A thread for the file, importing it: an idle thread of other files when there is one (a thread costs
   * far more memory than one more module in it), else a new one.
   */
  private grow(file: string) {
    const [dagsFolder, fileloc] = file.split('\0') as [string, string];
    const idle = [...this.slots]
      .filter((s) => this.isFree(s) && s.importing === 0 && s.files.size > 0 && !s.files.has(file))
      .sort((a, b) => a.files.size - b.files.size)[0];
    const slot = idle ?? this.newSlot();
    slot.files.add(file);
    slot.importing++;
    slot.worker.postMessage({ t: 'preload', dagsFolder, fileloc } satisfies ToThread);
    if (slot.ready) this.pump(file);
  }

  /**
   * The thread running the worker's call `id`, sent to `thread`. If it has not taken the call yet, it never
   * will (STOPPED), and a call it hands to the pool is dropped there.
   */
  private directSlot(id: number, reason: string, thread: number | undefined): Slot | undefined {
    if (thread === undefined) return undefined;
    const slot = [...this.slots].find((s) => s.thread === thread);
    if (slot) Atomics.store(slot.words.ints, STOPPED, id);
    // Read after the mark: either the thread saw the mark, or it holds the call and is seen here.
    if (slot && directOf(slot) === id) return slot;
    this.stoppedEarly.set(id, { reason, at: performance.now() });
    return undefined;
  }

  /** Ready, in the pool, and holding no call. */
  private isFree(s: Slot): boolean {
    return s.ready && !s.batch && this.slots.has(s) && Atomics.load(s.words.ints, STATE) === SLOT_IDLE;
  }

  private newSlot(): Slot {
    const shared = newThreadWords();
    const worker = codeThread(THREAD, { workerData: { channel: this.channel, shared } satisfies ThreadData });
    const slot: Slot = {
      worker,
      thread: worker.threadId,
      words: threadWords(shared),
      files: new Set(),
      ready: false,
      batch: null,
      importing: 0,
      idleSince: performance.now(),
    };
    this.slots.add(slot);
    this.byThread.set(slot.thread, slot);
    worker.on('message', (m: FromThread) => {
      if (m.t === 'ready') {
        slot.ready = true;
        this.pumpAll(slot);
        return;
      }
      if (m.t === 'warm') {
        slot.importing--;
        return;
      }
      if (m.t === 'bounce') return this.call(m.id, m.call);
      if (m.t === 'idle') {
        this.closeDone(slot);
        slot.idleSince = performance.now();
      }
      if (this.isFree(slot)) this.pumpAll(slot);
    });
    // An error nothing caught (a timer's throw) ends the thread: the call it ran fails with it.
    let uncaught: Error | null = null;
    worker.on('error', (e) => (uncaught = e));
    worker.on('exit', (code) => {
      this.slots.delete(slot);
      this.byThread.delete(slot.thread);
      // Calls it had not begun wait for another thread; the one it ran fails (unless its result came first).
      this.takeBack(slot);
      this.closeDone(slot);
      const began = [...(slot.batch?.open ?? [])];
      for (const id of began) this.closeCall(slot, id);
      const direct = directOf(slot);
      if (direct !== null) began.push(direct);
      this.events.ended(
        slot.thread,
        began,
        uncaught
          ? `${uncaught.name}: ${uncaught.message} (uncaught, in the task's thread)`
          : `the task's thread ended (exit code ${code}) before the task returned`,
      );
      // Calls waiting for its files still need a thread.
      for (const file of slot.files) {
        if (!this.waiting.get(file)?.length) continue;
        if (!this.threadsOf(file).length) this.grow(file);
        else this.pump(file);
      }
    });
    return slot;
  }

  /** A thread has become idle (or ready): the calls waiting for any of its files may go to it. */
  private pumpAll(slot: Slot) {
    for (const file of slot.files) {
      if (!this.isFree(slot)) return;
      this.pump(file);
    }
  }

  /** Gives the file's waiting calls to its idle threads, shared out, in batches. */
  private pump(file: string) {
    const q = this.waiting.get(file);
    if (!q) return;
    const idle = this.threadsOf(file).filter((s) => this.isFree(s));
    idle.forEach((slot, n) => {
      // A thread that has just taken a call from the worker (the pool will hear of it) is not idle.
      if (
        q.length === 0 ||
        Atomics.compareExchange(slot.words.ints, STATE, SLOT_IDLE, SLOT_POOL) !== SLOT_IDLE
      )
        return;
      const calls = q.splice(0, Math.min(MAX_BATCH, Math.ceil(q.length / (idle.length - n))));
      const batch: Batch = {
        calls,
        flags: new Int32Array(new SharedArrayBuffer(4 * calls.length)),
        began: new Float64Array(new SharedArrayBuffer(8 * calls.length)),
        open: new Set(calls.map((c) => c.id)),
      };
      slot.batch = batch;
      for (const c of calls) this.running.set(c.id, slot);
      const { open: _open, ...sent } = batch;
      slot.worker.postMessage({ t: 'calls', batch: sent } satisfies ToThread);
      if (calls.length > 1) this.watch(file);
    });
    if (q.length === 0) return void this.waiting.delete(file);
    // Threads running a worker's call say when they are done with it; one that was done before it read the
    // mark is free now.
    const threads = this.threadsOf(file);
    for (const s of threads) if (directOf(s) !== null) Atomics.store(s.words.ints, WANTED, 1);
    if (threads.some((s) => this.isFree(s))) this.pump(file);
  }

  /** Ends threads idle too long, keeping the newest idle one of each file warm. */
  private trim() {
    const now = performance.now();
    const kept = new Set<string>();
    for (const [id, early] of this.stoppedEarly) if (now - early.at > IDLE_MS) this.stoppedEarly.delete(id);
    // A thread's last call from the worker began after it was last idle as far as the pool heard.
    const lastUsed = (s: Slot) => Math.max(s.idleSince, s.words.began[0]! - performance.timeOrigin);
    const idle = [...this.slots]
      .filter((s) => this.isFree(s) && s.files.size > 0)
      .sort((a, b) => lastUsed(b) - lastUsed(a));
    for (const s of idle) {
      const newest = [...s.files].filter((f) => !kept.has(f));
      for (const f of newest) kept.add(f);
      if (newest.length > 0) continue;
      // Not one that has just taken a call from the worker.
      if (
        now - lastUsed(s) > IDLE_MS &&
        Atomics.compareExchange(s.words.ints, STATE, SLOT_IDLE, SLOT_RETIRED) === SLOT_IDLE
      ) {
        this.slots.delete(s);
        void s.worker.terminate();
      }
    }
  }

  /** The host ends: every thread with it. */
  endAll() {
    for (const s of this.slots) void s.worker.terminate();
  }
}

/** The worker's call the thread runs, if it runs one (DIRECT between two of them names none: 0). */
function directOf(s: Slot): number | null {
  if (Atomics.load(s.words.ints, STATE) !== SLOT_DIRECT) return null;
  return Atomics.load(s.words.ints, DIRECT_ID) || null;
}
