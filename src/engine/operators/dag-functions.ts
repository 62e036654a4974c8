/**
 * Functions of DAG files: node tasks, callbacks, a trigger's computed conf or items, custom operators. Called
 * in a thread of the worker's process host (user-code-thread.ts), never in the worker: the thread imports the
 * DAG file itself (scheduling never runs user code) and keeps the module until the file changes.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import { dagsOfModule } from '../dag/dags-of-module.js';
import type { DagFunction } from '../dag/functions.js';
import type { TaskContext } from '../dag/context.js';
import type { SerializedDag } from '../../core/dag-model.js';
import { TaskFailure, type RunInfo, type TaskLog } from './types.js';

/** Imported DAG modules by file path and modification time. */
const modules = new Map<string, Promise<Record<string, unknown>>>();
/**
 * A file's modification time, looked at most once a second: a stat per task was a measurable share of a
 * no-op task's cost. An edited file is used by tasks that start at most a second after the edit.
 */
const STAT_TTL_MS = 1000;
const stats = new Map<string, { mtimeMs: number | null; at: number }>();

async function mtimeOf(file: string): Promise<number | null> {
  const now = performance.now();
  const hit = stats.get(file);
  if (hit && now - hit.at < STAT_TTL_MS) return hit.mtimeMs;
  const st = await stat(file).catch(() => null);
  if (stats.size >= 10_000) stats.clear();
  stats.set(file, { mtimeMs: st?.mtimeMs ?? null, at: now });
  return st?.mtimeMs ?? null;
}

// Loaded with import() even when this module itself was loaded through require() (e.g. mocha on Node >= 20.19
// with tsx): tsx's CommonJS build of `tsx/esm/api` registers its loader by a wrong relative path and fails.
let tsImportFn: Promise<(typeof import('tsx/esm/api'))['tsImport']> | null = null;
function tsImport(specifier: string, parentURL: string): Promise<unknown> {
  return prepareImports().then((fn) => fn(specifier, parentURL));
}

/** Imports the loader of DAG files ahead of the first one. */
export function prepareImports() {
  tsImportFn ??= import('tsx/esm/api').then((m) => m.tsImport);
  return tsImportFn;
}
/** The DAG file's module as it is now (imported once per version); null when the file is not there. */
export async function importDagFile(
  dagsFolder: string,
  fileloc: string,
): Promise<Record<string, unknown> | null> {
  const file = path.resolve(dagsFolder, fileloc);
  const mtimeMs = await mtimeOf(file);
  if (mtimeMs === null) return null;
  const cacheKey = `${file}?v=${mtimeMs}`;
  let mod = modules.get(cacheKey);
  if (!mod) {
    // The query string makes a changed file load afresh instead of from the module cache.
    mod = tsImport(`${pathToFileURL(file).href}?v=${mtimeMs}`, import.meta.url) as Promise<
      Record<string, unknown>
    >;
    modules.set(cacheKey, mod);
    mod.catch(() => modules.delete(cacheKey));
  }
  return mod;
}

/** The function stored under `key` (see functionKey) by the DAG's file; a TaskFailure when it is gone. */
export async function loadDagFunction(
  dag: Pick<SerializedDag, 'fileloc' | 'dagId'>,
  dagsFolder: string,
  key: string,
): Promise<DagFunction> {
  const mod = await importDagFile(dagsFolder, dag.fileloc);
  if (!mod)
    throw new TaskFailure(`DAG file ${dag.fileloc} is not in this worker's dags folder (${dagsFolder})`);
  const d = dagsOfModule(mod).find((x) => x.id === dag.dagId);
  const fn = d?.functions.get(key);
  if (!fn) throw new TaskFailure(`${dag.fileloc} no longer defines ${dag.dagId}.${key}`);
  return fn;
}

/** `ctx.log(...)` of node functions: values inspected, one task log line per text line. */
export function logLines(log: TaskLog): (...args: unknown[]) => void {
  return (...args) => {
    const text = args.map((a) => (typeof a === 'string' ? a : inspect(a, { depth: 4 }))).join(' ');
    for (const line of text.split('\n')) log.stdout(line);
  };
}

/** What a call of a task's function is given (in its thread). */
export interface CallScope {
  run: RunInfo;
  upstream: string[];
  log: TaskLog;
  signal: AbortSignal;
  variable(key: string): Promise<string | undefined>;
  /** The GPUs lent to the try, and the environment a child process of it should get (see TaskContext). */
  gpuIds: readonly string[] | null;
  env: Record<string, string>;
}

/** The context node functions of a task receive. */
export function taskContextOf(ctx: CallScope): TaskContext {
  const upstream = new Set(ctx.upstream);
  return {
    dagId: ctx.run.dagId,
    runId: ctx.run.runId,
    taskId: ctx.run.taskId,
    tryNumber: ctx.run.tryNumber,
    logicalDate: ctx.run.logicalDate.toISOString(),
    conf: ctx.run.conf,
    output: <T>(ref: { id: string } | string): T => {
      const id = typeof ref === 'string' ? ref : ref.id;
      if (!upstream.has(id)) throw new Error(`task "${id}" is not a direct upstream of "${ctx.run.taskId}"`);
      return ctx.run.outputs.get(id) as T;
    },
    log: logLines(ctx.log),
    signal: ctx.signal,
    variable: (key) => ctx.variable(key),
    gpus: ctx.gpuIds,
    env: ctx.env,
    ...(ctx.run.mapIndex === undefined ? {} : { item: ctx.run.item, mapIndex: ctx.run.mapIndex }),
  };
}

/**
 * Calls a user function, stopping at the abort signal; a thrown error becomes a TaskFailure with its
 * stack in the log.
 */
export async function callUserFunction<T>(
  fn: () => T | Promise<T>,
  signal: AbortSignal,
  log: TaskLog,
): Promise<T> {
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      Promise.resolve().then(fn),
      new Promise<never>((_, reject) => {
        onAbort = () => reject(new TaskFailure(`stopped: ${String(signal.reason)}`));
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } catch (err) {
    if (err instanceof TaskFailure) throw err;
    const e = err instanceof Error ? err : new Error(String(err));
    for (const line of (e.stack ?? e.message).split('\n')) log.stderr(line);
    throw new TaskFailure(`${e.name}: ${e.message}`);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

/** Reads what an items function returned: a list, an iterable, an async iterable (not a string). */
export async function collectItems(value: unknown, max: number, signal: AbortSignal): Promise<unknown[]> {
  if (value === undefined || value === null) {
    throw new TaskFailure(
      `no items: the items function returned ${String(value)}; return a list or a generator`,
    );
  }
  if (Array.isArray(value)) return value;
  const out: unknown[] = [];
  const take = (v: unknown) => {
    // One past the cap is enough to report it; an endless generator must not run for ever.
    if (out.length > max) return false;
    out.push(v);
    return !signal.aborted;
  };
  if (typeof value === 'object' && Symbol.asyncIterator in value) {
    for await (const v of value as AsyncIterable<unknown>) if (!take(v)) break;
  } else if (typeof value === 'object' && Symbol.iterator in value) {
    for (const v of value as Iterable<unknown>) if (!take(v)) break;
  } else {
    throw new TaskFailure(
      `the items function returned ${describeValue(value)}; return a list or a generator`,
    );
  }
  return out;
}

/** A value as a message names it. */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return `a string (${JSON.stringify(v.slice(0, 40))})`;
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object that is not iterable' : `${typeof v} ${String(v)}`;
}
