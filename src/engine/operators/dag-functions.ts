/**
 * Functions of DAG files, called in the worker: node tasks, callbacks, a trigger's computed conf or items,
 * custom operators. The worker imports the DAG file itself (scheduling never runs user code) and keeps the
 * module until the file changes.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import { dagsOfModule } from '../dag/dags-of-module.js';
import type { DagFunction } from '../dag/functions.js';
import type { TaskContext } from '../dag/context.js';
import type { SerializedDag } from '../../core/dag-model.js';
import { TaskFailure, type OperatorContext, type TaskLog } from './types.js';
import { gpuEnv, taskEnv } from './task-env.js';

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
  tsImportFn ??= import('tsx/esm/api').then((m) => m.tsImport);
  return tsImportFn.then((fn) => fn(specifier, parentURL));
}

/** The function stored under `key` (see functionKey) by the DAG's file; a TaskFailure when it is gone. */
export async function loadDagFunction(
  dag: SerializedDag,
  dagsFolder: string,
  key: string,
): Promise<DagFunction> {
  const file = path.resolve(dagsFolder, dag.fileloc);
  const mtimeMs = await mtimeOf(file);
  if (mtimeMs === null)
    throw new TaskFailure(`DAG file ${dag.fileloc} is not in this worker's dags folder (${dagsFolder})`);
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
  const d = dagsOfModule(await mod).find((x) => x.id === dag.dagId);
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

/** The context node functions of a task receive. */
export function taskContextOf(ctx: OperatorContext): TaskContext {
  const upstream = new Set(ctx.task.upstream);
  return {
    dagId: ctx.run.dagId,
    runId: ctx.run.runId,
    taskId: ctx.run.taskId,
    tryNumber: ctx.run.tryNumber,
    logicalDate: ctx.run.logicalDate.toISOString(),
    conf: ctx.run.conf,
    output: <T>(ref: { id: string } | string): T => {
      const id = typeof ref === 'string' ? ref : ref.id;
      if (!upstream.has(id)) throw new Error(`task "${id}" is not a direct upstream of "${ctx.task.taskId}"`);
      return ctx.run.outputs.get(id) as T;
    },
    log: logLines(ctx.log),
    signal: ctx.signal,
    variable: (key) => ctx.variable(key),
    gpus: ctx.gpuIds ?? null,
    env: { ...taskEnv(ctx), ...gpuEnv(ctx) },
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
