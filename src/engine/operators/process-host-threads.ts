/**
 * The process host's threads for DAG-file functions (user-code-thread.ts). A thread runs one call at a time
 * and stays warm for its DAG file (it keeps the imported module), so a call costs a few messages, not an
 * import. A call goes to an idle thread of its file; else it waits for the first of that file's threads to
 * be free, and if every one of them has been held by its call for a moment (long or stuck calls, not a
 * burst of short ones: a new thread costs an import) another thread is started for the file. A spare
 * thread, its loaders already imported, waits for the next file that needs one. A stopped call's thread is
 * ended (Worker.terminate() interrupts even a synchronous loop); the other threads carry on.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { UserCall } from './user-code.js';
import type { FromThread, ToThread } from './user-code-thread.js';

const THREAD = new URL('./user-code-thread.js', import.meta.url);

/** A new thread; from the sources (development, through tsx) the thread's own module is loaded by tsx. */
function newThread(): Worker {
  if (existsSync(fileURLToPath(THREAD))) return new Worker(THREAD);
  const ts = JSON.stringify(new URL('./user-code-thread.ts', import.meta.url).href);
  const api = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  return new Worker(`import(${api}).then((m) => m.tsImport(${ts}, ${ts}))`, { eval: true });
}
/**
 * How long a call must have held each of its file's threads, while other calls wait, before another
 * thread is started: short calls, even a burst of them on a loaded machine, never start one (each costs an
 * import of the DAG file); long or stuck ones do.
 */
const GROW_AFTER_MS = 150;
/** How long a stopped call's code gets to see its signal before its thread is ended. */
const STOP_GRACE_MS = 1000;
/** An idle thread is ended after this long, except the last one of its file. */
const IDLE_MS = 60_000;

export interface ThreadEvents {
  message(id: number, m: FromThread): void;
}

interface Slot {
  worker: Worker;
  /** The DAG file it serves; null for the spare. */
  file: string | null;
  ready: boolean;
  /** The call it runs. */
  id: number | null;
  /** When the call it runs started: a thread held this long by one call counts as busy for good. */
  callStartedAt: number;
  /** It imported its DAG file (or failed to): a thread still importing is not added to. */
  warm: boolean;
  idleSince: number;
}

export class ThreadPool {
  private readonly slots = new Set<Slot>();
  /** Calls waiting for a thread, by file, in order. */
  private readonly waiting = new Map<string, Array<{ id: number; call: UserCall }>>();
  private readonly running = new Map<number, Slot>();
  private spare: Slot | null = null;

  constructor(private readonly events: ThreadEvents) {
    setInterval(() => this.trim(), IDLE_MS / 2).unref();
    this.spare = this.newSlot(null);
  }

  call(id: number, call: UserCall) {
    const file = `${call.dagsFolder}\0${call.fileloc}`;
    let q = this.waiting.get(file);
    if (!q) this.waiting.set(file, (q = []));
    q.push({ id, call });
    this.pump(file);
    if (!this.waiting.get(file)?.length) return;
    // No thread of the file at all: start one now; else give the busy ones a moment.
    if (![...this.slots].some((s) => s.file === file)) this.grow(file);
    else this.watch(file);
  }

  /** Files whose waiting calls are watched for threads held by long calls. */
  private readonly watched = new Set<string>();

  private watch(file: string) {
    if (this.watched.has(file)) return;
    this.watched.add(file);
    setTimeout(() => {
      this.watched.delete(file);
      const q = this.waiting.get(file);
      if (!q?.length) return;
      const now = performance.now();
      const threads = [...this.slots].filter((s) => s.file === file);
      // One thread warms up at a time: a burst of calls to a big file must not start a dozen imports.
      const warming = threads.some((s) => !s.warm);
      const allHeld = threads.every((s) => s.id !== null && now - s.callStartedAt >= GROW_AFTER_MS);
      if (allHeld && !warming) this.grow(file);
      this.watch(file);
    }, GROW_AFTER_MS).unref();
  }

  /** Forwards a message to the thread running call `id`. */
  send(id: number, m: ToThread) {
    this.running.get(id)?.worker.postMessage(m);
  }

  /** Stops call `id`: a waiting call is dropped; a running one is aborted, then its thread ended. */
  stop(id: number, reason: string) {
    for (const q of this.waiting.values()) {
      const i = q.findIndex((w) => w.id === id);
      if (i >= 0) {
        q.splice(i, 1);
        this.events.message(id, { t: 'done', ok: false, message: `stopped: ${reason}` });
        return;
      }
    }
    const slot = this.running.get(id);
    if (!slot) return;
    slot.worker.postMessage({ t: 'abort', reason } satisfies ToThread);
    // Never used again: whatever the call left running (timers, promises) must not meet the next call.
    this.slots.delete(slot);
    setTimeout(() => void slot.worker.terminate(), STOP_GRACE_MS).unref();
    // Its file keeps a warm thread: a retry must not pay the import within its timeout.
    const file = slot.file!;
    if (![...this.slots].some((s) => s.file === file)) this.grow(file);
  }

  /** A thread for the file, importing it: the spare when there is one (and a new spare), else a new one. */
  private grow(file: string) {
    const [dagsFolder, fileloc] = file.split('\0') as [string, string];
    const slot = this.spare ?? this.newSlot(file);
    if (slot === this.spare) {
      slot.file = file;
      this.spare = this.newSlot(null);
    }
    slot.worker.postMessage({ t: 'preload', dagsFolder, fileloc } satisfies ToThread);
    if (slot.ready) this.pump(file);
  }

  private newSlot(file: string | null): Slot {
    const worker = newThread();
    const slot: Slot = {
      worker,
      file,
      ready: false,
      id: null,
      callStartedAt: 0,
      warm: false,
      idleSince: performance.now(),
    };
    this.slots.add(slot);
    worker.on('message', (m: FromThread) => {
      if (m.t === 'ready') {
        slot.ready = true;
        if (slot.file !== null) this.pump(slot.file);
        return;
      }
      if (m.t === 'warm') {
        slot.warm = true;
        return;
      }
      if (slot.id === null) return;
      const id = slot.id;
      if (m.t === 'done') {
        this.running.delete(id);
        slot.id = null;
        slot.idleSince = performance.now();
      }
      this.events.message(id, m);
      if (m.t === 'done' && this.slots.has(slot)) this.pump(slot.file!);
    });
    // An error nothing caught (a timer's throw) ends the thread: the call it ran fails with it.
    let uncaught: Error | null = null;
    worker.on('error', (e) => (uncaught = e));
    worker.on('exit', (code) => {
      this.slots.delete(slot);
      if (this.spare === slot) this.spare = null;
      const file = slot.file;
      if (slot.id !== null) {
        const id = slot.id;
        slot.id = null;
        if (this.running.get(id) === slot) this.running.delete(id);
        this.events.message(id, {
          t: 'done',
          ok: false,
          message: uncaught
            ? `${uncaught.name}: ${uncaught.message} (uncaught, in the task's thread)`
            : `the task's thread ended (exit code ${code}) before the task returned`,
        });
      }
      // Calls waiting for this file still need a thread.
      if (file !== null && this.waiting.get(file)?.length && ![...this.slots].some((s) => s.file === file))
        this.grow(file);
    });
    return slot;
  }

  private pump(file: string) {
    const q = this.waiting.get(file);
    if (!q) return;
    for (const slot of this.slots) {
      if (q.length === 0) break;
      if (slot.file !== file || !slot.ready || slot.id !== null) continue;
      const { id, call } = q.shift()!;
      slot.id = id;
      slot.callStartedAt = performance.now();
      this.running.set(id, slot);
      slot.worker.postMessage({ t: 'call', id, call } satisfies ToThread);
    }
    if (q.length === 0) this.waiting.delete(file);
  }

  /** Ends threads idle too long, keeping the newest idle one of each file warm. */
  private trim() {
    const now = performance.now();
    const kept = new Set<string>();
    const idle = [...this.slots]
      .filter((s) => s.ready && s.id === null && s.file !== null)
      .sort((a, b) => b.idleSince - a.idleSince);
    for (const s of idle) {
      if (!kept.has(s.file!)) {
        kept.add(s.file!);
        continue;
      }
      if (now - s.idleSince > IDLE_MS) {
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
