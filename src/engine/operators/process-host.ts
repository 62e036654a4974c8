/**
 * The worker's side of the process host (process-host-child.ts): one host per worker process (and task
 * user), started by the first task, that runs every task's code off the worker's process: it forks process
 * tasks' commands and runs DAG-file functions (node tasks, callbacks, custom operators, trigger functions) in
 * its threads (process-host-threads.ts), and relays their lines, requests and results as data. The host
 * starts with the worker's environment scrubbed of every engine credential (task-env.ts), as the task user
 * when the worker has one (`worker --run-as`). If the host itself ends (killed), the worker SIGKILLs the
 * groups of the commands it started, their tries are lost (run again, not counted as failures, up to
 * FREE_LOST_TRIES), and the next task starts a new host.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { workerEnv } from './task-env.js';
import type { TaskUser } from './task-user.js';
import type { UserCall } from './user-code.js';

/** Set when the host's MALLOC_ARENA_MAX is its own (hostMalloc), not the worker's. */
export const HOST_MALLOC_ENV = 'AIRTASKS_HOST_MALLOC';

export type ToHost =
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
  /** The answer to a call's request for a variable (null: not set), or the error reading it. */
  | { t: 'answer'; id: number; req: number; value: string | null; error?: string }
  /** Stops call `id`: its signal is aborted, and its thread ended soon after, whatever it is doing. */
  | { t: 'stop'; id: number; reason: string };

/** The host sends arrays of these, in order. */
export type FromHost =
  | { t: 'started'; id: number; pid: number }
  | { t: 'error'; id: number; message: string; code?: string }
  /** Lines in the order read; 0 stdout, 1 stderr. */
  | { t: 'lines'; id: number; lines: Array<[0 | 1, string]> }
  | { t: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null }
  /** A call reads a variable. */
  | { t: 'ask'; id: number; req: number; key: string }
  /** A call ended: its return value as JSON (null: not JSON-serialisable), or its failure's message. */
  | { t: 'done'; id: number; ok: true; json: string | null }
  | { t: 'done'; id: number; ok: false; message: string };

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

const HOST = fileURLToPath(new URL('./process-host-child.js', import.meta.url));
/**
 * The host's heap, for each of its isolates (its own, its threads', their loaders'), whatever the worker was
 * started with: a small young generation (their garbage is mostly short-lived call messages, and each would
 * otherwise grow its own to 16 MiB and more under a burst of calls), and an old generation that grows by 20%
 * past what the last full collection kept, not by V8's default factor of up to 4 (a thread keeps the DAG
 * files it has imported, and importing one of thousands of tasks leaves as much again in garbage).
 */
const HOST_HEAP_FLAGS = ['--max-semi-space-size=2', '--heap-growing-percent=20'];
/**
 * glibc's malloc arenas for the host: two, not one per thread that allocates (up to 8 per core), each
 * keeping freed memory of its own. The host's commands and threads do not inherit it (process-host-child.ts
 * unsets it, unless the worker's own environment set it).
 */
function hostMalloc(env: Record<string, string>): Record<string, string> {
  return env.MALLOC_ARENA_MAX === undefined ? { MALLOC_ARENA_MAX: '2', [HOST_MALLOC_ENV]: '1' } : {};
}

interface Pending {
  callbacks: ProcessCallbacks | CallCallbacks;
  pid: number | null;
  resolve(v: unknown): void;
  reject(err: Error): void;
}

class ProcessHost {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Messages of one turn go together: one write to the channel (many tasks start in the same turn). */
  private outbox: ToHost[] = [];
  gone = false;

  constructor(
    env: Record<string, string>,
    private readonly user: TaskUser | null,
  ) {
    // Detached: its own process group, so no signal meant for the worker's group (Ctrl-C) reaches it.
    this.child = fork(HOST, ['airtasks-process-host'], {
      env: {
        ...env,
        ...hostMalloc(env),
        ...(user ? { HOME: user.home, USER: user.name, LOGNAME: user.name } : {}),
      },
      // Node clears the supplementary groups when it sets uid/gid.
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
      // The worker's loader flags (tsx in development), not its inspector: that port is the worker's.
      execArgv: [...process.execArgv.filter((a) => !a.startsWith('--inspect')), ...HOST_HEAP_FLAGS],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      detached: true,
      serialization: 'json',
    });
    this.child.on('message', (ms: FromHost[]) => {
      for (const m of ms) this.onMessage(m);
    });
    this.child.on('error', () => this.onGone());
    this.child.on('exit', () => this.onGone());
    this.idle();
  }

  get userKey(): string {
    return userKey(this.user);
  }

  start(spec: ProcessSpec, callbacks: ProcessCallbacks): HostedProcess {
    const id = this.nextId++;
    const exited = this.add<{ code: number | null; signal: NodeJS.Signals | null }>(id, callbacks);
    this.send({ t: 'spawn', id, ...spec });
    return {
      exited,
      signal: (signal) => {
        if (!this.gone && this.pending.has(id)) this.send({ t: 'signal', id, signal });
      },
    };
  }

  call(call: UserCall, callbacks: CallCallbacks): HostedCall {
    const id = this.nextId++;
    const done = this.add<CallEnd>(id, callbacks);
    this.send({ t: 'call', id, call });
    return {
      done,
      stop: (reason) => {
        if (!this.gone && this.pending.has(id)) this.send({ t: 'stop', id, reason });
      },
    };
  }

  private add<T>(id: number, callbacks: ProcessCallbacks | CallCallbacks): Promise<T> {
    const p = new Promise<T>((resolve, reject) => {
      this.pending.set(id, { callbacks, pid: null, resolve: resolve as (v: unknown) => void, reject });
    });
    this.busy();
    return p;
  }

  private send(m: ToHost) {
    if (this.outbox.push(m) === 1) setImmediate(this.flush);
  }

  private readonly flush = () => {
    const ms = this.outbox;
    this.outbox = [];
    if (!this.gone && ms.length > 0) this.child.send(ms);
  };

  private onMessage(m: FromHost) {
    const p = this.pending.get(m.id);
    if (!p) return;
    switch (m.t) {
      case 'started':
        p.pid = m.pid;
        break;
      case 'lines':
        for (const [stream, line] of m.lines) (stream === 0 ? p.callbacks.stdout : p.callbacks.stderr)(line);
        break;
      case 'ask':
        this.answer(m.id, m.req, m.key, p.callbacks as CallCallbacks);
        break;
      case 'error':
        this.settle(m.id);
        p.reject(new NotStarted(m.message, m.code));
        break;
      case 'exit':
        this.settle(m.id);
        p.resolve({ code: m.code, signal: m.signal });
        break;
      case 'done':
        this.settle(m.id);
        p.resolve(m.ok ? { ok: true, json: m.json } : { ok: false, message: m.message });
        break;
    }
  }

  /** The worker reads the variable (the database, decryption and masking are the worker's). */
  private answer(id: number, req: number, key: string, callbacks: CallCallbacks) {
    callbacks.variable(key).then(
      (value) => {
        if (this.pending.has(id)) this.send({ t: 'answer', id, req, value: value ?? null });
      },
      (err: Error) => {
        if (this.pending.has(id)) this.send({ t: 'answer', id, req, value: null, error: err.message });
      },
    );
  }

  private settle(id: number) {
    this.pending.delete(id);
    if (this.pending.size === 0) this.idle();
  }

  private onGone() {
    if (this.gone) return;
    this.gone = true;
    if (hosts.get(this.userKey) === this) hosts.delete(this.userKey);
    // After an error it may live on, cut off: its commands are about to be killed, and so is it.
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    for (const p of this.pending.values()) {
      if (p.pid !== null) {
        try {
          process.kill(-p.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      p.reject(new HostLost());
    }
    this.pending.clear();
  }

  // While no task runs, the host must not keep the worker's event loop alive.
  private busy() {
    if (this.pending.size === 1) {
      this.child.ref();
      this.child.channel?.ref();
    }
  }

  private idle() {
    this.child.unref();
    this.child.channel?.unref();
  }
}

function userKey(user: TaskUser | null): string {
  return user ? `${user.uid}:${user.gid}` : '';
}

/** The host of each task user ('' : the worker's own user). */
const hosts = new Map<string, ProcessHost>();

function hostFor(user: TaskUser | null): ProcessHost {
  const key = userKey(user);
  let host = hosts.get(key);
  if (!host || host.gone) {
    host = new ProcessHost(workerEnv(), user);
    hosts.set(key, host);
  }
  return host;
}

/**
 * Starts a command as the leader of its own process group, in the process host of `user` (null: the
 * worker's own user). Rejects with NotStarted when the command could not be started.
 */
export function startProcess(
  spec: ProcessSpec,
  callbacks: ProcessCallbacks,
  user: TaskUser | null,
): HostedProcess {
  return hostFor(user).start(spec, callbacks);
}

/** Runs a function of a DAG file in a thread of the process host of `user`. */
export function startCall(call: UserCall, callbacks: CallCallbacks, user: TaskUser | null): HostedCall {
  return hostFor(user).call(call, callbacks);
}

/** Starts the process host of `user` ahead of the first task. */
export function prepareProcessHost(user: TaskUser | null) {
  hostFor(user);
}
