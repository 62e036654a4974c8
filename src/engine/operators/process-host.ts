/**
 * The worker's side of the process host (process-host-child.ts): one host per worker process, started by
 * the first process task, that forks the tasks' commands off the worker's event loop and relays their
 * lines and exit. If the host itself ends (killed), the worker SIGKILLs the groups of the commands it
 * started, their tries are lost (run again, not counted as failures, up to FREE_LOST_TRIES), and the next
 * task starts a new host.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export type ToHost =
  | {
      t: 'spawn';
      id: number;
      file: string;
      args: string[];
      argv0?: string;
      cwd: string;
      /** Added to the host's environment, which is the worker's without the secret key. */
      env: Record<string, string>;
    }
  /** Signals the group of command `id`, unless it has exited (a signal sent before it started waits for it). */
  | { t: 'signal'; id: number; signal: NodeJS.Signals };

/** The host sends arrays of these, in order. */
export type FromHost =
  | { t: 'started'; id: number; pid: number }
  | { t: 'error'; id: number; message: string; code?: string }
  /** Lines in the order read; 0 stdout, 1 stderr. */
  | { t: 'lines'; id: number; lines: Array<[0 | 1, string]> }
  | { t: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null };

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

export interface HostedProcess {
  /** Settles once the command has exited and its output has been relayed. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Signals the command's process group, unless it has exited. */
  signal(sig: NodeJS.Signals): void;
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

interface Pending {
  callbacks: ProcessCallbacks;
  pid: number | null;
  resolve(v: { code: number | null; signal: NodeJS.Signals | null }): void;
  reject(err: Error): void;
}

class ProcessHost {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  gone = false;

  constructor(env: NodeJS.ProcessEnv) {
    // Detached: its own process group, so no signal meant for the worker's group (Ctrl-C) reaches it.
    this.child = fork(HOST, ['airtasks-process-host'], {
      env,
      // The worker's loader flags (tsx in development), not its inspector: that port is the worker's.
      execArgv: process.execArgv.filter((a) => !a.startsWith('--inspect')),
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

  start(spec: ProcessSpec, callbacks: ProcessCallbacks): HostedProcess {
    const id = this.nextId++;
    let pending!: Pending;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      pending = { callbacks, pid: null, resolve, reject };
    });
    this.pending.set(id, pending);
    this.busy();
    this.child.send({ t: 'spawn', id, ...spec } satisfies ToHost);
    return {
      exited,
      signal: (signal) => {
        if (!this.gone && this.pending.has(id)) this.child.send({ t: 'signal', id, signal } satisfies ToHost);
      },
    };
  }

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
      case 'error':
        this.settle(m.id);
        p.reject(new NotStarted(m.message, m.code));
        break;
      case 'exit':
        this.settle(m.id);
        p.resolve({ code: m.code, signal: m.signal });
        break;
    }
  }

  private settle(id: number) {
    this.pending.delete(id);
    if (this.pending.size === 0) this.idle();
  }

  private onGone() {
    if (this.gone) return;
    this.gone = true;
    if (host === this) host = null;
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

  // While no command runs, the host must not keep the worker's event loop alive.
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

let host: ProcessHost | null = null;

/**
 * Starts a command as the leader of its own process group, in the worker's process host (started on
 * first use with `env` as its environment: the worker's, without secrets). Rejects with NotStarted when
 * the command could not be started.
 */
export function startProcess(
  spec: ProcessSpec,
  callbacks: ProcessCallbacks,
  hostEnv: () => NodeJS.ProcessEnv,
): HostedProcess {
  if (!host || host.gone) host = new ProcessHost(hostEnv());
  return host.start(spec, callbacks);
}
