/**
 * A thread of the process host that runs DAG-file functions, one call at a time (the pool is
 * process-host-threads.ts). It imports the DAG file itself and keeps it while the file is unchanged, so a
 * thread stays warm for its file. Everything a call gets or gives crosses as data: its context (run, conf,
 * upstream outputs), its log lines, its variable reads (answered by the worker), its result as JSON; the
 * call's messages go to the worker on this thread's own channel (thread-protocol.ts).
 *
 * Calls come from the pool in batches (one message, not one wake-up of the thread per call) and run in
 * order (thread-batches.ts); each is taken with a compare-and-swap on its flag in memory shared with the
 * pool, which can take back any call not yet begun at any moment, even while this thread is stuck in a
 * synchronous loop. Calls may also come from the worker directly, taken in the order sent while this thread
 * is idle or runs the worker's calls (SEQ in thread-protocol.ts: the host may take back those not taken).
 */
import { createConnection } from 'node:net';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import type { CallbackContext } from '../dag/context.js';
import type { OperatorRunContext } from '../dag/define-operator.js';
import {
  callUserFunction,
  collectItems,
  importDagFile,
  loadDagFunction,
  logLines,
  prepareImports,
  taskContextOf,
} from './dag-functions.js';
import type { TaskLog } from './types.js';
import { TaskFailure } from './types.js';
import { fromWire, type UserCall } from './user-code.js';
import { onJsonLines, writeJsonLine } from './json-lines.js';
import { ThreadBatches } from './thread-batches.js';
import {
  DIRECT_ID,
  SEQ,
  SLOT_DIRECT,
  SLOT_IDLE,
  STATE,
  STOPPED,
  threadWords,
  WANTED,
  type CallMessage,
  type FromThread,
  type FromThreadDirect,
  type ThreadData,
  type ToThread,
  type ToThreadDirect,
} from './thread-protocol.js';

const port = parentPort!;
const { channel, shared } = workerData as ThreadData;
const { ints, began } = threadWords(shared);
/** The call running now: its messages name it. */
let current = 0;
const post = (m: FromThread) => port.postMessage(m);

// The worker's end of this thread's channel. Written at once, not per turn: a call's result must not wait
// on the next call (which may not yield). Without it this thread cannot report anything: it ends.
const worker = createConnection(channel.path);
worker.on('error', () => undefined);
worker.on('close', () => process.exit(1));
const tell = (m: FromThreadDirect) => writeJsonLine(worker, m);
type Unaddressed<M> = M extends unknown ? Omit<M, 'id'> : never;
const tellCall = (m: Unaddressed<CallMessage>) => tell({ ...m, id: current } as CallMessage);

/**
 * The host's own values of the variables calls have set: one the next call does not set is put back, so
 * no call sees another's. Writing process.env is costly in a thread and consecutive calls mostly set the
 * same values (their run's), so a value already in place is not written again.
 */
const replaced = new Map<string, string | undefined>();
function setEnv(env: Record<string, string>) {
  for (const [k, v] of replaced) {
    if (Object.hasOwn(env, k)) continue;
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
    replaced.delete(k);
  }
  for (const [k, v] of Object.entries(env)) {
    if (!replaced.has(k)) replaced.set(k, process.env[k]);
    if (process.env[k] !== v) process.env[k] = v;
  }
}

let abort: AbortController | null = null;
const asks = new Map<number, { resolve(v: string | undefined): void; reject(e: Error): void }>();
let nextReq = 1;

function variable(key: string): Promise<string | undefined> {
  const req = nextReq++;
  return new Promise((resolve, reject) => {
    asks.set(req, { resolve, reject });
    tellCall({ t: 'ask', req, key: String(key) });
  });
}

const log: TaskLog = {
  stdout: (l) => tellCall({ t: 'lines', lines: [[0, l]] }),
  stderr: (l) => tellCall({ t: 'lines', lines: [[1, l]] }),
  system: (l) => tellCall({ t: 'lines', lines: [[0, l]] }),
};

async function invoke(call: UserCall, signal: AbortSignal): Promise<unknown> {
  const run = fromWire(call.run);
  const scope = { run, upstream: call.upstream, log, signal, variable, gpuIds: call.gpuIds, env: call.env };
  const loaded = loadDagFunction(call, call.dagsFolder, call.key);
  if (call.kind === 'custom') {
    const fn = await loaded.catch((err: Error) => {
      throw new TaskFailure(
        `no operator "${call.operator}" is built in, and ${err.message}: define it with defineOperator() in a module the DAG file imports`,
      );
    });
    // Only custom operators render templates: other threads need not load the template engine.
    const { render, templateContext } = await import('../templates/render.js');
    const tpl = templateContext(run);
    const runCtx: OperatorRunContext<Record<string, unknown>> = {
      ...taskContextOf(scope),
      args: call.args ?? {},
      render: (t: string) => render(t, tpl),
    };
    return callUserFunction(() => (fn as (c: typeof runCtx) => unknown)(runCtx), signal, log);
  }
  const fn = (await loaded) as (c: unknown) => unknown;
  if (call.kind === 'callback') {
    const cb = call.callback!;
    const ctx: CallbackContext = {
      event: cb.event,
      dagId: run.dagId,
      runId: run.runId,
      taskId: cb.forTask ? run.taskId : null,
      tryNumber: cb.forTask ? run.tryNumber : null,
      state: cb.state,
      error: cb.error,
      conf: run.conf,
      logicalDate: run.logicalDate.toISOString(),
      log: logLines(log),
      signal,
      variable,
    };
    return callUserFunction(() => fn(ctx), signal, log);
  }
  const taskCtx = taskContextOf(scope);
  if (call.kind === 'items') {
    const max = call.maxItems ?? Infinity;
    return callUserFunction(async () => collectItems(await fn(taskCtx), max, signal), signal, log);
  }
  return callUserFunction(() => fn(taskCtx), signal, log);
}

/**
 * Runs call `id`, then reports its end to the worker, after `idle()` (which says whether this thread is IDLE
 * now); resolves to what `idle()` said.
 */
async function run(call: UserCall, id: number, idle: () => boolean): Promise<boolean> {
  current = id;
  setEnv(call.env);
  abort = new AbortController();
  let end: Unaddressed<Extract<CallMessage, { t: 'done' }>>;
  try {
    const value = await invoke(call, abort.signal);
    try {
      end = {
        t: 'done',
        ok: true,
        json: value === undefined ? 'null' : (JSON.stringify(value) ?? null),
        idle: false,
      };
    } catch (err) {
      const message = `the task returned a value that is not JSON data: ${(err as Error).message}`;
      end = { t: 'done', ok: false, message, idle: false };
    }
  } catch (err) {
    // callUserFunction made any error a TaskFailure; loading the file may throw others.
    end = { t: 'done', ok: false, message: err instanceof Error ? err.message : String(err), idle: false };
  } finally {
    abort = null;
    asks.clear();
  }
  end.idle = idle();
  tellCall(end);
  return end.idle;
}

const batches = new ThreadBatches(ints, { run, post });

const leaveDirect = () => Atomics.compareExchange(ints, STATE, SLOT_DIRECT, SLOT_IDLE) === SLOT_DIRECT;

/** After a worker's call: a thread left IDLE tells the pool when the pool has calls waiting for it. */
function idleAfterDirect(idle: boolean) {
  if (idle && Atomics.exchange(ints, WANTED, 0) === 1) post({ t: 'idle' });
}

/**
 * A worker's call is over: IDLE when no other waits, else DIRECT for the next, naming no call meanwhile (a
 * stop of the call over must not find this thread running it).
 */
function afterDirect(): boolean {
  // Calls the host took back (numbered up to SEQ, and not taken here) wait for nothing of this thread: left
  // waiting, they would keep it DIRECT and the worker would not hear that it is idle.
  const taken = Atomics.load(ints, SEQ);
  while (held.length > 0 && held[0]!.seq <= taken) held.shift();
  if (held.length === 0) return leaveDirect();
  Atomics.store(ints, DIRECT_ID, 0);
  return false;
}

/** The worker's calls not yet taken, in the order sent (their sequence numbers rise by one). */
const held: Array<{ id: number; seq: number; call: UserCall }> = [];
let taking = false;

/**
 * Runs the worker's calls in the order sent, while this thread is IDLE or runs them (DIRECT): each is taken
 * by raising SEQ to its number, unless the pool took it back for the worker first (it runs elsewhere then).
 * One that finds a batch of the pool holding this thread goes to the pool.
 */
async function takeHeld() {
  if (taking) return;
  taking = true;
  try {
    while (held.length > 0) {
      const { id, seq, call } = held.shift()!;
      const state = Atomics.load(ints, STATE);
      // Taken back: it runs elsewhere. Between two of the worker's calls, as after one that ran.
      if (Atomics.compareExchange(ints, SEQ, seq - 1, seq) !== seq - 1) {
        if (state === SLOT_DIRECT) idleAfterDirect(afterDirect());
        continue;
      }
      // Written before the state says DIRECT, so the pool never reads another call's; a call taken names
      // it, so a thread that ends now has it among the calls it began.
      began[0] = performance.timeOrigin + performance.now();
      Atomics.store(ints, DIRECT_ID, id);
      if (
        state !== SLOT_DIRECT &&
        Atomics.compareExchange(ints, STATE, SLOT_IDLE, SLOT_DIRECT) !== SLOT_IDLE
      ) {
        // A batch holds this thread (or it is retired): the pool runs the call, the worker is told.
        tell({ t: 'moved', id });
        post({ t: 'bounce', id, call });
        continue;
      }
      // Stopped while on its way here: the pool saw neither it nor this thread holding it.
      if (Atomics.load(ints, STOPPED) === id) {
        current = id;
        const idle = afterDirect();
        tellCall({ t: 'done', ok: false, message: 'stopped', idle });
        idleAfterDirect(idle);
        continue;
      }
      idleAfterDirect(await run(call, id, afterDirect));
    }
  } finally {
    taking = false;
  }
}

function fromWorker(m: ToThreadDirect) {
  if (m.t === 'call') {
    held.push({ id: m.id, seq: m.seq, call: m.call });
    void takeHeld();
  } else if (m.t === 'answer') {
    const a = asks.get(m.req);
    asks.delete(m.req);
    if (m.error !== undefined) a?.reject(new Error(m.error));
    else a?.resolve(m.value ?? undefined);
  }
}

port.on('message', (m: ToThread) => {
  if (m.t === 'calls') batches.give(m.batch);
  else if (m.t === 'abort') {
    if (m.id === current) abort?.abort(m.reason);
  }
  // A file that fails to import fails its calls, which say why.
  else if (m.t === 'preload')
    importDagFile(m.dagsFolder, m.fileloc)
      .catch(() => undefined)
      .finally(() => post({ t: 'warm' }));
});

// Ready once the loader of DAG files is, and the worker has answered on the channel: the pool gives it
// calls from then on, and the worker knows this thread before any call of it can end.
const welcomed = new Promise<void>((resolve) => {
  onJsonLines<ToThreadDirect>(
    worker,
    (m) => (m.t === 'welcome' ? resolve() : fromWorker(m)),
    () => worker.destroy(),
  );
  tell({ t: 'hello', token: channel.token, thread: threadId });
});
void Promise.all([prepareImports().catch(() => undefined), welcomed]).then(() => post({ t: 'ready' }));
