/**
 * What the worker and its process host (process-host.ts, process-host-child.ts) say to each other over the
 * host's IPC channel, and what a command or a call started in the host looks like to the worker.
 */
import type { ChannelAddress } from './thread-protocol.js';
import type { UserCall } from './user-code.js';

/** Set when the host's MALLOC_ARENA_MAX is its own (hostMalloc), not the worker's. */
export const HOST_MALLOC_ENV = 'AIRTASKS_HOST_MALLOC';

export type ToHost =
  /** The first message: where its threads find the worker. */
  | { t: 'channel'; channel: ChannelAddress }
  | {
      t: 'spawn';
      id: number;
      file: string;
      args: string[];
      argv0?: string;
      cwd: string;
      /** Added to the host's environment, which is the worker's scrubbed of the engine's variables. */
      env: Record<string, string>;
    }
  /** Signals the group of command `id`, unless it has exited (a signal sent before it started waits for it). */
  | { t: 'signal'; id: number; signal: NodeJS.Signals }
  /** Runs a function of a DAG file in one of the host's threads. */
  | { t: 'call'; id: number; call: UserCall }
  /**
   * Stops call `id`: its signal is aborted, and its thread ended soon after, whatever it is doing. `thread`:
   * the call was sent to that thread directly.
   */
  | { t: 'stop'; id: number; reason: string; thread?: number }
  /**
   * Takes back the calls sent to `thread` directly, up to sequence number `upTo`, that it has not taken
   * (thread-protocol.ts' SEQ); answered by 'takenBack'.
   */
  | { t: 'takeBack'; thread: number; upTo: number };

/** The host sends arrays of these, in order. */
export type FromHost =
  | { t: 'started'; id: number; pid: number }
  | { t: 'error'; id: number; message: string; code?: string }
  /** Lines in the order read; 0 stdout, 1 stderr. */
  | { t: 'lines'; id: number; lines: Array<[0 | 1, string]> }
  | { t: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null }
  /** The pool ended a call that had not begun (stopped). */
  | { t: 'done'; id: number; ok: false; message: string }
  /**
   * A thread ended; of the calls it was given, `began` had begun (they fail with `message`, unless their
   * result came first on its channel); the others run elsewhere.
   */
  | { t: 'ended'; thread: number; began: number[]; message: string }
  /** The calls sent to `thread` with sequence numbers `from` to `to` were taken back (none: from > to). */
  | { t: 'takenBack'; thread: number; from: number; to: number };

export interface ProcessSpec {
  file: string;
  args: string[];
  argv0?: string;
  cwd: string;
  env: Record<string, string>;
}

export interface ProcessCallbacks {
  stdout(line: string): void;
  stderr(line: string): void;
}

export interface CallCallbacks extends ProcessCallbacks {
  variable(key: string): Promise<string | undefined>;
}

export interface HostedProcess {
  /** Settles once the command has exited and its output has been relayed. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Signals the command's process group, unless it has exited. */
  signal(sig: NodeJS.Signals): void;
}

export type CallEnd = { ok: true; json: string | null } | { ok: false; message: string };

export interface HostedCall {
  readonly done: Promise<CallEnd>;
  /** Stops the call (aborts its signal, then ends its thread); `done` still settles. */
  stop(reason: string): void;
}

/** The command could not be started (no such file, not executable): nothing ran. */
export class NotStarted extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'NotStarted';
  }
}

/** The process host ended while the command ran: its process group was killed; not the task's doing. */
export class HostLost extends Error {
  constructor() {
    super('the process host ended while the command ran (its processes were killed)');
    this.name = 'HostLost';
  }
}
