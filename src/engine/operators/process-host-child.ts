/**
 * The process host: a small Node process, one per worker process (and task user), that starts the worker's
 * process tasks and relays their output and exit (lines cut at a bound), and runs DAG-file functions in
 * its threads (process-host-threads.ts; protocol in process-host-protocol.ts), which answer the worker on channels
 * of their own (thread-protocol.ts). Its environment holds nothing of the
 * engine's. Forking from here, not from the worker, keeps the worker's event loop free: a fork copies the
 * page tables of the process that forks, and every page of the worker is write-protected until it next
 * writes it, which cost the worker 1-2 ms a task.
 *
 * It is also the lifeline of those tasks: each leads its own process group, and when the worker is gone,
 * however it ended (even SIGKILLed: the kernel closes the IPC channel), every group still running is
 * SIGKILLed before the host exits. So no task keeps running unseen after its worker is gone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { HOST_MALLOC_ENV, type FromHost, type ToHost } from './process-host-protocol.js';
import { onBoundedLines } from './bounded-lines.js';
import { ThreadPool } from './process-host-threads.js';

// glibc read the host's own malloc setting at its start; its commands and threads get the worker's.
if (process.env[HOST_MALLOC_ENV] === '1') {
  delete process.env.MALLOC_ARENA_MAX;
  delete process.env[HOST_MALLOC_ENV];
}

/** The process group of each running command, by the worker's id for the command. */
const groups = new Map<number, number>();

/** Messages of one turn of the event loop go together, in order: one write to the channel, not one each. */
const outbox: FromHost[] = [];
/** Counts the writes: a command's lines join its last 'lines' message until that one is written. */
let writes = 0;
function send(m: FromHost) {
  if (outbox.push(m) === 1) setImmediate(flushOutbox);
}
function flushOutbox() {
  writes++;
  process.send?.(outbox.splice(0));
}

function killGroup(pgid: number, sig: NodeJS.Signals) {
  try {
    process.kill(-pgid, sig);
  } catch {
    // Already gone.
  }
}

function start(m: Extract<ToHost, { t: 'spawn' }>) {
  let child: ChildProcess;
  try {
    child = spawn(m.file, m.args, {
      cwd: m.cwd,
      env: { ...process.env, ...m.env },
      argv0: m.argv0,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
  } catch (err) {
    // Refused before any process was made (E2BIG: arguments or environment too long, a NUL byte): the
    // command's failure, never the host's.
    send({
      t: 'error',
      id: m.id,
      message: (err as Error).message,
      code: (err as NodeJS.ErrnoException).code,
    });
    return;
  }
  const pgid = child.pid;
  if (!pgid) {
    child.on('error', (err) =>
      send({ t: 'error', id: m.id, message: err.message, code: (err as NodeJS.ErrnoException).code }),
    );
    return;
  }
  groups.set(m.id, pgid);
  send({ t: 'started', id: m.id, pid: pgid });
  // Lines read together go together: one message, not one per line.
  let open: { write: number; lines: Array<[0 | 1, string]> } | null = null;
  const line = (stream: 0 | 1) => (l: string) => {
    if (open?.write !== writes) {
      open = { write: writes, lines: [] };
      send({ t: 'lines', id: m.id, lines: open.lines });
    }
    open.lines.push([stream, l]);
  };
  onBoundedLines(child.stdout!, line(0));
  onBoundedLines(child.stderr!, line(1));
  // Once the command has exited, anything it left running in the background in its group is ended too;
  // then the group is forgotten, and never signalled again: its id may be reused.
  child.on('exit', () => {
    killGroup(pgid, 'SIGKILL');
    groups.delete(m.id);
  });
  child.on('close', (code, signal) => send({ t: 'exit', id: m.id, code, signal }));
}

/** No call taken back. */
const NONE = { from: 1, to: 0 };

/** The pool of threads for DAG-file functions: made when the worker says where the threads find it. */
let threads: ThreadPool | null = null;

function onMessage(m: ToHost) {
  switch (m.t) {
    case 'spawn':
      start(m);
      break;
    case 'signal': {
      // Messages arrive in order: a command's spawn has been handled before any signal for it.
      const pgid = groups.get(m.id);
      if (pgid !== undefined) killGroup(pgid, m.signal);
      break;
    }
    case 'channel':
      threads ??= new ThreadPool(m.channel, {
        done: (id, message) => send({ t: 'done', id, ok: false, message }),
        ended: (thread, began, message) => send({ t: 'ended', thread, began, message }),
      });
      break;
    case 'call':
      threads?.call(m.id, m.call);
      break;
    case 'stop':
      threads?.stop(m.id, m.reason, m.thread);
      break;
    case 'takeBack':
      send({ t: 'takenBack', thread: m.thread, ...(threads?.takeBackDirect(m.thread, m.upTo) ?? NONE) });
      break;
  }
}

// The worker sends the messages of one of its turns together.
process.on('message', (ms: ToHost[]) => {
  for (const m of ms) onMessage(m);
});

// The worker is gone: its tasks go with it.
function workerGone(): never {
  for (const pgid of groups.values()) killGroup(pgid, 'SIGKILL');
  threads?.endAll();
  process.exit(0);
}
process.on('disconnect', workerGone);
// Gone already, while this module was loading: the event came before anyone listened.
if (!process.connected) workerGone();
// Signals meant for the worker's terminal or process group are not for the host: it ends with the worker.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => undefined);
