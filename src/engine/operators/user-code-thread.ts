/**
 * A thread of the process host that runs DAG-file functions, one call at a time (the pool is
 * process-host-threads.ts). It imports the DAG file itself and keeps it while the file is unchanged, so a
 * thread stays warm for its file. Everything a call gets or gives crosses as data: its context (run, conf,
 * upstream outputs), its log lines, its variable reads (answered by the worker), its result as JSON.
 *
 * Calls come in batches (one message, not one wake-up of the thread per call) and run in order; each is
 * taken with a compare-and-swap on its flag in memory shared with the pool, which can take back any call
 * not yet begun at any moment, even while this thread is stuck in a synchronous loop.
 */
import { parentPort } from 'node:worker_threads';
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
import {
  BEGUN,
  QUEUED,
  type CallBatch,
  type CallEvent,
  type CallMessage,
  type FromThread,
  type ToThread,
} from './thread-protocol.js';

const port = parentPort!;
/** The call running now: its messages name it. */
let current = 0;
// Posted at once, not per turn: a call's result must not wait on the next call (which may not yield).
const post = (m: FromThread) => port.postMessage(m);
const postCall = (m: CallEvent) => post({ ...m, id: current } as CallMessage);

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
    postCall({ t: 'ask', req, key: String(key) });
  });
}

const log: TaskLog = {
  stdout: (l) => postCall({ t: 'lines', lines: [[0, l]] }),
  stderr: (l) => postCall({ t: 'lines', lines: [[1, l]] }),
  system: (l) => postCall({ t: 'lines', lines: [[0, l]] }),
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

async function run(call: UserCall) {
  setEnv(call.env);
  abort = new AbortController();
  try {
    const value = await invoke(call, abort.signal);
    let json: string | null;
    try {
      json = value === undefined ? 'null' : (JSON.stringify(value) ?? null);
    } catch (err) {
      postCall({
        t: 'done',
        ok: false,
        message: `the task returned a value that is not JSON data: ${(err as Error).message}`,
      });
      return;
    }
    postCall({ t: 'done', ok: true, json });
  } catch (err) {
    // callUserFunction made any error a TaskFailure; loading the file may throw others.
    postCall({ t: 'done', ok: false, message: err instanceof Error ? err.message : String(err) });
  } finally {
    abort = null;
    asks.clear();
  }
}

/** Calls given and not yet taken or skipped, in order. */
const queue: Array<{ batch: CallBatch; i: number }> = [];
let draining = false;

async function drain() {
  if (draining) return;
  draining = true;
  while (queue.length > 0) {
    const { batch, i } = queue.shift()!;
    batch.began[i] = performance.timeOrigin + performance.now();
    // Taken back by the pool (stopped, or moved off this thread while another call held it): skip it.
    if (Atomics.compareExchange(batch.flags, i, QUEUED, BEGUN) !== QUEUED) continue;
    current = batch.calls[i]!.id;
    await run(batch.calls[i]!.call);
  }
  draining = false;
}

port.on('message', (m: ToThread) => {
  if (m.t === 'calls') {
    for (let i = 0; i < m.batch.calls.length; i++) queue.push({ batch: m.batch, i });
    void drain();
  } else if (m.t === 'answer') {
    const a = asks.get(m.req);
    asks.delete(m.req);
    if (m.error !== undefined) a?.reject(new Error(m.error));
    else a?.resolve(m.value ?? undefined);
  } else if (m.t === 'abort') {
    if (m.id === current) abort?.abort(m.reason);
  }
  // A file that fails to import fails its calls, which say why.
  else if (m.t === 'preload')
    importDagFile(m.dagsFolder, m.fileloc)
      .catch(() => undefined)
      .finally(() => post({ t: 'warm' }));
});

// Ready once the loader of DAG files is: the pool gives it calls from then on.
prepareImports().then(
  () => post({ t: 'ready' }),
  () => post({ t: 'ready' }),
);
