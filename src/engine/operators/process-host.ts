/**
 * The worker's side of the process host (process-host-child.ts): one host per worker process (and task
 * user), started by the first task, that runs every task's code off the worker's process: it forks process
 * tasks' commands and runs DAG-file functions (node tasks, callbacks, custom operators, trigger functions) in
 * its threads (process-host-threads.ts), and relays commands' lines and exits as data; a call's lines, variable
 * reads and result come from its thread over that thread's own channel (call-channel.ts), and a call of a
 * DAG file whose thread is idle, or runs a burst of its calls, goes straight to it (call-routes.ts). The host
 * starts with the worker's environment scrubbed of every engine credential (task-env.ts), as the task user
 * when the worker has one (`worker --run-as`). If the host itself ends (killed), the worker SIGKILLs the
 * groups of the commands it started, their tries are lost (run again, not counted as failures, up to
 * FREE_LOST_TRIES), and the next task starts a new host.
 */
import type { ChildProcess } from 'node:child_process';
import { CallChannel, type ThreadReport } from './call-channel.js';
import { CallRoutes } from './call-routes.js';
import { forkHost } from './process-host-fork.js';
import { workerEnv } from './task-env.js';
import type { TaskUser } from './task-user.js';
import {
  HostLost,
  NotStarted,
  type CallCallbacks,
  type CallEnd,
  type FromHost,
  type HostedCall,
  type HostedProcess,
  type ProcessCallbacks,
  type ProcessSpec,
  type ToHost,
} from './process-host-protocol.js';
import { fileOf } from './thread-protocol.js';
import type { UserCall } from './user-code.js';

interface Pending {
  callbacks: ProcessCallbacks | CallCallbacks;
  pid: number | null;
  resolve(v: unknown): void;
  reject(err: Error): void;
  /**
   * A DAG-file function's call: which file, the thread it was sent to (null: through the host), and
   * whether it was stopped (it never goes to another thread then).
   */
  call?: { call: UserCall; file: string; thread: number | null; seq: number; stopped: boolean };
}

class ProcessHost {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly channel: CallChannel;
  readonly routes: CallRoutes;
  /** Messages of one turn go together: one write to the channel (many tasks start in the same turn). */
  private outbox: ToHost[] = [];
  gone = false;

  constructor(
    env: Record<string, string>,
    private readonly user: TaskUser | null,
  ) {
    this.child = forkHost(env, user);
    this.child.on('message', (ms: FromHost[]) => {
      for (const m of ms) this.onMessage(m);
    });
    this.child.on('error', () => this.onGone());
    this.child.on('exit', () => this.onGone());
    this.channel = new CallChannel((thread, m) => this.onReport(thread, m), user);
    this.routes = new CallRoutes(
      (thread) => this.channel.isOpen(thread),
      (thread, upTo) => !this.gone && this.send({ t: 'takeBack', thread, upTo }),
    );
    this.send({ t: 'channel', channel: this.channel.address });
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
    const done = this.add<CallEnd>(id, callbacks, {
      call,
      file: fileOf(call),
      thread: null,
      seq: 0,
      stopped: false,
    });
    this.dispatch(id);
    return {
      done,
      stop: (reason) => {
        const c = this.pending.get(id)?.call;
        if (this.gone || !c) return;
        c.stopped = true;
        if (c.thread === null) return this.send({ t: 'stop', id, reason });
        // Not yet taken by its thread, it never will be; taken, the stop reaches it.
        this.send({ t: 'takeBack', thread: c.thread, upTo: c.seq });
        this.send({ t: 'stop', id, reason, thread: c.thread });
      },
    };
  }

  /** Sends call `id` to a thread of its file that takes it directly, or else through the host's pool. */
  private dispatch(id: number) {
    const c = this.pending.get(id)!.call!;
    const to = this.routes.direct(c.file, id);
    if (to && this.channel.send(to.thread, { t: 'call', id, seq: to.seq, call: c.call })) {
      c.thread = to.thread;
      c.seq = to.seq;
      return;
    }
    if (to) this.routes.directDone(to.thread, id);
    this.throughHost(c);
    this.send({ t: 'call', id, call: c.call });
  }

  private throughHost(c: NonNullable<Pending['call']>) {
    c.thread = null;
    this.routes.toPool(c.file);
  }

  /** Calls sent to `thread` that the host took back before the thread took them. */
  private onTakenBack(thread: number, from: number, to: number) {
    if (from > to) return;
    for (const [id, p] of this.pending) {
      const c = p.call;
      if (!c || c.thread !== thread || c.seq < from || c.seq > to) continue;
      this.routes.directDone(thread, id);
      if (c.stopped) {
        this.settle(id);
        p.resolve({ ok: false, message: 'stopped' } satisfies CallEnd);
        continue;
      }
      this.throughHost(c);
      this.send({ t: 'call', id, call: c.call });
    }
  }

  /** What a thread says on its channel about a call it runs. */
  private onReport(thread: number, m: ThreadReport) {
    const p = this.pending.get(m.id);
    if (!p?.call) return;
    switch (m.t) {
      case 'lines':
        for (const [stream, line] of m.lines) (stream === 0 ? p.callbacks.stdout : p.callbacks.stderr)(line);
        break;
      case 'ask':
        this.answer(m.id, thread, m.req, m.key, p.callbacks as CallCallbacks);
        break;
      case 'moved':
        if (p.call.thread !== thread) break;
        this.routes.directDone(thread, m.id);
        this.throughHost(p.call);
        break;
      case 'done': {
        const file = p.call.file;
        if (p.call.thread !== null) this.routes.directDone(p.call.thread, m.id);
        this.settle(m.id);
        p.resolve(m.ok ? { ok: true, json: m.json } : { ok: false, message: m.message });
        if (m.idle) this.routes.idle(thread, file);
        break;
      }
    }
  }

  /**
   * A thread ended: once everything it sent has been read, its calls that had begun and are not done fail;
   * a call sent to it directly that it never took goes through the host.
   */
  private onThreadEnded(thread: number, began: number[], message: string) {
    this.routes.ended(thread);
    this.channel.afterClose(thread, () => {
      const begun = new Set(began);
      for (const [id, p] of this.pending) {
        if (!p.call) continue;
        if (begun.has(id) || (p.call.thread === thread && p.call.stopped)) {
          this.settle(id);
          p.resolve({ ok: false, message } satisfies CallEnd);
        } else if (p.call.thread === thread) {
          // Queued in it and never taken: nothing of it ran.
          this.throughHost(p.call);
          this.send({ t: 'call', id, call: p.call.call });
        }
      }
    });
  }

  private add<T>(
    id: number,
    callbacks: ProcessCallbacks | CallCallbacks,
    call?: Pending['call'],
  ): Promise<T> {
    const p = new Promise<T>((resolve, reject) => {
      this.pending.set(id, { callbacks, pid: null, resolve: resolve as (v: unknown) => void, reject, call });
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
    if (m.t === 'ended') return this.onThreadEnded(m.thread, m.began, m.message);
    if (m.t === 'takenBack') return this.onTakenBack(m.thread, m.from, m.to);
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
      case 'done':
        this.settle(m.id);
        p.resolve({ ok: false, message: m.message } satisfies CallEnd);
        break;
    }
  }

  /** The worker reads the variable (the database, decryption and masking are the worker's). */
  private answer(id: number, thread: number, req: number, key: string, callbacks: CallCallbacks) {
    callbacks.variable(key).then(
      (value) => {
        if (this.pending.has(id)) this.channel.send(thread, { t: 'answer', id, req, value: value ?? null });
      },
      (err: Error) => {
        if (this.pending.has(id))
          this.channel.send(thread, { t: 'answer', id, req, value: null, error: err.message });
      },
    );
  }

  private settle(id: number) {
    const c = this.pending.get(id)?.call;
    if (c?.thread === null) this.routes.poolCallDone(c.file);
    this.pending.delete(id);
    if (this.pending.size === 0) this.idle();
  }

  private onGone() {
    if (this.gone) return;
    this.gone = true;
    if (hosts.get(this.userKey) === this) hosts.delete(this.userKey);
    this.channel.close();
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

/** How many calls of the worker's own user went straight to a thread of its host (tests watch the route). */
export function directCallCount(): number {
  return hosts.get('')?.routes.directCount ?? 0;
}
