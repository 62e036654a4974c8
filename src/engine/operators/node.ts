/** Runs a TypeScript function from the DAG file in the worker process; its return value is the output. */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import { dagsOfModule, type NodeTaskFn } from '../dag/builder.js';
import type { TaskContext } from '../dag/context.js';
import { TaskFailure, type Operator, type OperatorContext, type OperatorResult } from './types.js';

/** Imported DAG modules by file path and modification time. */
const modules = new Map<string, Promise<Record<string, unknown>>>();

// Loaded with import() even when this module itself was loaded through require() (e.g. mocha on Node >= 20.19
// with tsx): tsx's CommonJS build of `tsx/esm/api` registers its loader by a wrong relative path and fails.
let tsImportFn: Promise<(typeof import('tsx/esm/api'))['tsImport']> | null = null;
function tsImport(specifier: string, parentURL: string): Promise<unknown> {
  tsImportFn ??= import('tsx/esm/api').then((m) => m.tsImport);
  return tsImportFn.then((fn) => fn(specifier, parentURL));
}

async function loadFunction(ctx: OperatorContext): Promise<NodeTaskFn> {
  const file = path.resolve(ctx.dagsFolder, ctx.dag.fileloc);
  const st = await stat(file).catch(() => null);
  if (!st)
    throw new TaskFailure(
      `DAG file ${ctx.dag.fileloc} is not in this worker's dags folder (${ctx.dagsFolder})`,
    );
  const key = `${file}?v=${st.mtimeMs}`;
  let mod = modules.get(key);
  if (!mod) {
    // The query string makes a changed file load afresh instead of from the module cache.
    mod = tsImport(`${pathToFileURL(file).href}?v=${st.mtimeMs}`, import.meta.url) as Promise<
      Record<string, unknown>
    >;
    modules.set(key, mod);
    mod.catch(() => modules.delete(key));
  }
  const d = dagsOfModule(await mod).find((x) => x.id === ctx.dag.dagId);
  const fn = d?.functions.get(ctx.task.taskId);
  if (!fn)
    throw new TaskFailure(
      `${ctx.dag.fileloc} no longer defines node task ${ctx.dag.dagId}.${ctx.task.taskId}`,
    );
  return fn;
}

export const nodeOperator: Operator = {
  name: 'node',
  async execute(ctx: OperatorContext): Promise<OperatorResult> {
    const fn = await loadFunction(ctx);
    const upstream = new Set(ctx.task.upstream);
    const taskCtx: TaskContext = {
      dagId: ctx.run.dagId,
      runId: ctx.run.runId,
      taskId: ctx.run.taskId,
      tryNumber: ctx.run.tryNumber,
      logicalDate: ctx.run.logicalDate.toISOString(),
      conf: ctx.run.conf,
      output: <T>(ref: { id: string } | string): T => {
        const id = typeof ref === 'string' ? ref : ref.id;
        if (!upstream.has(id))
          throw new Error(`task "${id}" is not a direct upstream of "${ctx.task.taskId}"`);
        return ctx.run.outputs.get(id) as T;
      },
      log: (...args) => {
        const text = args.map((a) => (typeof a === 'string' ? a : inspect(a, { depth: 4 }))).join(' ');
        for (const line of text.split('\n')) ctx.log.stdout(line);
      },
      signal: ctx.signal,
      variable: (key) => ctx.variable(key),
    };
    try {
      const output = await Promise.race([
        Promise.resolve().then(() => (fn as (c: TaskContext) => unknown)(taskCtx)),
        new Promise<never>((_, reject) =>
          ctx.signal.addEventListener(
            'abort',
            () => reject(new TaskFailure(`stopped: ${String(ctx.signal.reason)}`)),
            {
              once: true,
            },
          ),
        ),
      ]);
      return { output: output === undefined ? null : output };
    } catch (err) {
      if (err instanceof TaskFailure) throw err;
      const e = err instanceof Error ? err : new Error(String(err));
      for (const line of (e.stack ?? e.message).split('\n')) ctx.log.stderr(line);
      throw new TaskFailure(`${e.name}: ${e.message}`);
    }
  },
};
