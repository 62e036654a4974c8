/**
 * What the process host's main thread (process-host-threads.ts) and its threads (user-code-thread.ts) say
 * to each other: messages as data, and the shared flags by which a call of a batch runs in one thread only.
 */
import type { UserCall } from './user-code.js';

/** Host -> thread. */
export type ToThread =
  | { t: 'calls'; batch: CallBatch }
  | { t: 'answer'; req: number; value: string | null; error?: string }
  /** Aborts call `id` if it is the one running. */
  | { t: 'abort'; id: number; reason: string }
  /** Imports a DAG file ahead of its calls: a new thread of a file warms up before a call waits on it. */
  | { t: 'preload'; dagsFolder: string; fileloc: string };

/**
 * Calls given to a thread together. `flags` (shared memory) holds each call's state: QUEUED until the thread
 * takes it (BEGUN, its start time in `began`) or the pool takes it back (REVOKED); both sides change it only
 * by compare-and-swap from QUEUED, so a call runs here or elsewhere, never both.
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

/** Thread -> host. */
export type FromThread =
  /** Its loaders are imported: it takes calls. */
  | { t: 'ready' }
  /** The DAG file it was given is imported (or failed to be). */
  | { t: 'warm' }
  | CallMessage;

/** About call `id`, the one the thread runs. */
export type CallMessage = { id: number } & (
  | { t: 'lines'; lines: Array<[0 | 1, string]> }
  | { t: 'ask'; req: number; key: string }
  | { t: 'done'; ok: true; json: string | null }
  | { t: 'done'; ok: false; message: string }
);

/** A call's message without its address: what the thread sends of the call it runs, and what the pool tells. */
export type CallEvent = Unaddressed<CallMessage>;
type Unaddressed<M> = M extends unknown ? Omit<M, 'id'> : never;
