/**
 * A thread of the process host that runs DAG-file functions, one call at a time (the pool is
 * process-host-threads.ts). It imports the DAG file itself and keeps it while the file is unchanged, so a
 * thread stays warm for its file. Everything a call gets or gives crosses as data: its context (run, conf,
 * upstream outputs), its log lines, its variable reads (answered by the worker), its result as JSON.
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

/** Host -> thread. */
export type ToThread =
  | { t: 'call'; id: number; call: UserCall }
  | { t: 'answer'; req: number; value: string | null; error?: string }
  | { t: 'abort'; reason: string }
  /** Imports a DAG file ahead of its calls: a new thread of a file warms up before a call waits on it. */
  | { t: 'preload'; dagsFolder: string; fileloc: string };

/** Thread -> host (the call is the one the thread runs). */
export type FromThread =
  /** Its loaders are imported: it takes calls. */
  | { t: 'ready' }
  /** The DAG file it was given is imported (or failed to be). */
  | { t: 'warm' }
  | { t: 'lines'; lines: Array<[0 | 1, string]> }
  | { t: 'ask'; req: number; key: string }
  | { t: 'done'; ok: true; json: string | null }
  | { t: 'done'; ok: false; message: string };

const port = parentPort!;
const post = (m: FromThread) => port.postMessage(m);

/**
 * The variables the last call set, with the values they replaced: the next call first puts those back, so
 * no call sees another's (and the host's own come back), at the cost of the call's few names only.
 */
const replaced = new Map<string, string | undefined>();
function setEnv(env: Record<string, string>) {
  for (const [k, v] of replaced) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  replaced.clear();
  for (const [k, v] of Object.entries(env)) {
    replaced.set(k, process.env[k]);
    process.env[k] = v;
  }
}

let abort: AbortController | null = null;
const asks = new Map<number, { resolve(v: string | undefined): void; reject(e: Error): void }>();
let nextReq = 1;

function variable(key: string): Promise<string | undefined> {
  const req = nextReq++;
  return new Promise((resolve, reject) => {
    asks.set(req, { resolve, reject });
    post({ t: 'ask', req, key: String(key) });
  });
}

const log: TaskLog = {
  stdout: (l) => post({ t: 'lines', lines: [[0, l]] }),
  stderr: (l) => post({ t: 'lines', lines: [[1, l]] }),
  system: (l) => post({ t: 'lines', lines: [[0, l]] }),
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
      post({
        t: 'done',
        ok: false,
        message: `the task returned a value that is not JSON data: ${(err as Error).message}`,
      });
      return;
    }
    post({ t: 'done', ok: true, json });
  } catch (err) {
    // callUserFunction made any error a TaskFailure; loading the file may throw others.
    post({ t: 'done', ok: false, message: err instanceof Error ? err.message : String(err) });
  } finally {
    abort = null;
    asks.clear();
  }
}

port.on('message', (m: ToThread) => {
  if (m.t === 'call') void run(m.call);
  else if (m.t === 'answer') {
    const a = asks.get(m.req);
    asks.delete(m.req);
    if (m.error !== undefined) a?.reject(new Error(m.error));
    else a?.resolve(m.value ?? undefined);
  } else if (m.t === 'abort') abort?.abort(m.reason);
  // A file that fails to import fails its calls, which say why.
  else if (m.t === 'preload')
    importDagFile(m.dagsFolder, m.fileloc)
      .catch(() => undefined)
      .finally(() => post({ t: 'warm' }));
});

// Ready once the loader of DAG files is: a spare thread pays that before any call waits on it.
prepareImports().then(
  () => post({ t: 'ready' }),
  () => post({ t: 'ready' }),
);
