/**
 * What the process host's main thread (process-host-threads.ts), its threads (user-code-thread.ts) and the
 * worker (call-channel.ts) say to each other: messages as data, and the shared flags by which a call runs in
 * one thread only.
 *
 * A call reaches a thread one of two ways: through the host's main thread, whose pool gives it to a thread
 * of its DAG file in a batch; or straight from the worker over the thread's own channel, when the worker
 * knows that thread to be idle for the file, or running a burst of its calls (each hop through the host's
 * main thread costs a wake-up of an idle CPU, which on a virtual machine is most of a hop's cost). Either
 * way the call's lines, variable reads and result go back to the worker over that channel. Who runs what is
 * settled by compare-and-swap on shared memory: a batch's calls by their flags, the thread's own state by
 * SLOT_* below, the worker's calls by SEQ.
 */
import type { UserCall } from './user-code.js';

/** The DAG file a call runs in, as one key: the pool keeps a file's threads by it, the worker its routes. */
export const fileOf = (call: UserCall) => `${call.dagsFolder}\0${call.fileloc}`;

/** Host's main thread -> thread. */
export type ToThread =
  | { t: 'calls'; batch: CallBatch }
  /** Aborts call `id` if it is the one running. */
  | { t: 'abort'; id: number; reason: string }
  /** Imports a DAG file ahead of its calls: a new thread of a file warms up before a call waits on it. */
  | { t: 'preload'; dagsFolder: string; fileloc: string };

/**
 * Calls given to a thread together. `flags` (shared memory) holds each call's state: QUEUED until the thread
 * takes it (BEGUN, its start time in `began`) or the pool takes it back (REVOKED); both sides change it only
 * by compare-and-swap from QUEUED, so a call runs here or elsewhere, never both. The thread marks a call
 * DONE once its result has gone to the worker: the pool reads that when it needs to, instead of hearing of
 * each call's end (a message wakes the host's main thread; most calls are short).
 */
export interface CallBatch {
  calls: Array<{ id: number; call: UserCall }>;
  flags: Int32Array;
  /** When each call began (ms since the epoch), written before the thread takes it. */
  began: Float64Array;
}
export const QUEUED = 0;
export const BEGUN = 1;
export const REVOKED = 2;
export const DONE = 3;

/**
 * A thread's state (ThreadWords.ints[STATE]). The pool gives a batch only to an IDLE thread (IDLE -> POOL)
 * and retires one (-> RETIRED, never left); the thread takes a call from the worker only when IDLE (IDLE ->
 * DIRECT), and goes back to IDLE when its batch is drained or its call is done. Every change but retiring is
 * a compare-and-swap, so a thread never holds a batch and a worker's call at once.
 */
export const SLOT_IDLE = 0;
export const SLOT_POOL = 1;
export const SLOT_DIRECT = 2;
export const SLOT_RETIRED = 3;

/**
 * The words a thread shares with the pool. A call taken from the worker costs the host's main thread
 * nothing: the pool reads what it needs of it here (to stop it, to see it has held its thread long, to know
 * the thread is idle) instead of hearing of it.
 */
export interface ThreadWords {
  /** STATE, DIRECT_ID, WANTED, STOPPED, SEQ. */
  ints: Int32Array;
  /** [0]: when the worker's call it runs (DIRECT_ID) began, ms since the epoch; written before DIRECT. */
  began: Float64Array;
}
export const STATE = 0;
/** The worker's call the thread runs, while DIRECT (0 for the moment between two of them). */
export const DIRECT_ID = 1;
/** 1: the pool has calls waiting for this thread; it says 'idle' when it leaves DIRECT. */
export const WANTED = 2;
/** A worker's call the pool was told to stop before it knew the thread had it: never begun. */
export const STOPPED = 3;

/**
 * The worker's calls sent to the thread carry sequence numbers 1, 2, 3... in the order sent (the thread
 * reads them in that order); SEQ is the highest one settled: taken by the thread (it raises SEQ from n - 1 to
 * n to take call n, then runs it or hands it to the pool) or taken back by the pool for the worker (it raises
 * SEQ past every call not yet taken, which the worker then sends through the pool). Both change it only by
 * compare-and-swap, so a call queued in a busy thread runs there or elsewhere, never both.
 */
export const SEQ = 4;

export function threadWords(shared: SharedArrayBuffer): ThreadWords {
  return { ints: new Int32Array(shared, 0, 5), began: new Float64Array(shared, 24, 1) };
}
export const newThreadWords = () => new SharedArrayBuffer(32);

/** Where a thread finds the worker: a Unix socket, and the secret that proves the thread is the host's. */
export interface ChannelAddress {
  path: string;
  token: string;
}

/** A thread's workerData. */
export interface ThreadData {
  channel: ChannelAddress;
  /** Its ThreadWords. */
  shared: SharedArrayBuffer;
}

/** Thread -> host's main thread. */
export type FromThread =
  /** Its loaders are imported and the worker has answered on its channel: it takes calls. */
  | { t: 'ready' }
  /** The DAG file it was given is imported (or failed to be). */
  | { t: 'warm' }
  /**
   * It has become IDLE after a batch (each of its calls DONE or taken back), or after a worker's call while
   * WANTED.
   */
  | { t: 'idle' }
  /** A call from the worker that came while it was not IDLE: the pool runs it (the worker was told). */
  | { t: 'bounce'; id: number; call: UserCall };

/** Worker -> thread, on the thread's channel. */
export type ToThreadDirect =
  | { t: 'welcome' }
  /** `seq`: see SEQ. */
  | { t: 'call'; id: number; seq: number; call: UserCall }
  | { t: 'answer'; id: number; req: number; value: string | null; error?: string };

/** Thread -> worker, on the thread's channel. The first message is its hello. */
export type FromThreadDirect =
  | { t: 'hello'; token: string; thread: number }
  | CallMessage
  /** Call `id`, sent to this thread by the worker, went to the pool instead: the host runs it. */
  | { t: 'moved'; id: number };

/** About call `id`, the one the thread runs. */
export type CallMessage = { id: number } & (
  | { t: 'lines'; lines: Array<[0 | 1, string]> }
  | { t: 'ask'; req: number; key: string }
  /** `idle`: the thread is IDLE after it, and may be given a call of the same file directly. */
  | { t: 'done'; ok: true; json: string | null; idle: boolean }
  | { t: 'done'; ok: false; message: string; idle: boolean }
);

/** What the pool tells of a call it ends itself (stopped before it began). */
export type CallEvent = { t: 'done'; ok: false; message: string };
