/**
 * Custom operators: a new kind of task, defined once (e.g. in a project's plugins/ folder) and used by
 * several DAG files.
 *
 *   // plugins/http_check.ts
 *   export const httpCheck = defineOperator({
 *     name: 'http_check',
 *     validate: (args: { url: string }) => { if (!args.url) throw new Error('url is required'); },
 *     run: async (ctx) => (await fetch(ctx.render(ctx.args.url))).status,
 *   });
 *   // dags/site.ts
 *   httpCheck(d, 'check_site', { url: 'https://example.com', retries: 2 });
 *
 * The arguments are stored (JSON) in the DAG's serialised form under the operator's name, so the hash,
 * `dags show` and every retry see exactly what was declared. The code runs in the worker only: the worker
 * imports the DAG file, which imports the plugin, as it does for node tasks; scheduling never runs it.
 */
import { BUILTIN_OPERATORS } from '../../core/dag-model.js';
import type { TaskContext } from './context.js';
import { DagValidationError } from './validate.js';
import type { Dag, TaskRef } from './builder.js';
import type { DagFunction } from './functions.js';
import type { TaskOptions } from './options.js';

export interface OperatorRunContext<Args> extends TaskContext {
  /** The task's arguments as stored with the DAG version of the run. */
  args: Args;
  /** Renders a template with the task's variables ({{ conf.x }}, {{ ds }}, {{ outputs.t }}). */
  render(template: string): string;
}

export interface OperatorDefinition<Args extends object, Out> {
  /** The operator's name, stored with each of its tasks: letters, digits, '_', '.', '-'. */
  name: string;
  /** Checks the arguments when the DAG file is loaded (`dags validate`, the scheduler's parse); throw to refuse. */
  validate?: (args: Args) => void;
  /** Does the work in the worker; the return value (JSON) is the task's output; a throw fails the try. */
  run: (ctx: OperatorRunContext<Args>) => Out | Promise<Out>;
}

export type OperatorTaskOptions<Args> = Args & TaskOptions;

/** Adds a task of the operator to a DAG. */
export type OperatorFactory<Args, Out> = (
  dag: Dag<never> | Dag<any>, // eslint-disable-line @typescript-eslint/no-explicit-any
  id: string,
  opts: OperatorTaskOptions<Args>,
) => TaskRef<Awaited<Out>>;

const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,99}$/;

/** The keys of task options; everything else a factory is given is the operator's arguments. */
const TASK_OPTION_KEYS = new Set<string>([
  'upstream',
  'queue',
  'retries',
  'retryDelay',
  'retryExponentialBackoff',
  'maxRetryDelay',
  'timeout',
  'triggerRule',
  'priorityWeight',
  'weightRule',
  'pool',
  'poolSlots',
  'onFailure',
  'onSuccess',
  'onRetry',
] satisfies Array<keyof TaskOptions>);

export function defineOperator<Args extends object, Out = unknown>(
  def: OperatorDefinition<Args, Out>,
): OperatorFactory<Args, Out> {
  if (typeof def?.name !== 'string' || !NAME.test(def.name)) {
    throw new DagValidationError(
      `invalid operator name ${JSON.stringify(def?.name)}: use letters, digits, '_', '.', '-', starting with a letter`,
    );
  }
  if ((BUILTIN_OPERATORS as readonly string[]).includes(def.name)) {
    throw new DagValidationError(`operator name "${def.name}" is taken by a built-in operator`);
  }
  if (typeof def.run !== 'function')
    throw new DagValidationError(`operator "${def.name}" needs a run function`);
  return (dag, id, opts) => {
    const args: Record<string, unknown> = {};
    const taskOpts: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(opts ?? {})) {
      if (v === undefined) continue;
      if (TASK_OPTION_KEYS.has(k)) taskOpts[k] = v;
      else args[k] = v;
    }
    const where = `task "${id}" in DAG "${dag.id}" (${def.name})`;
    let stored: Record<string, unknown>;
    try {
      def.validate?.(args as Args);
      stored = JSON.parse(JSON.stringify(args)) as Record<string, unknown>;
    } catch (err) {
      throw new DagValidationError(`${where}: ${(err as Error).message}`, dag.id);
    }
    const ref = (dag as Dag<never>).task<Awaited<Out>>(id, def.name, stored, taskOpts as TaskOptions);
    (dag as Dag<never>).functions.set(id, ((ctx: OperatorRunContext<Args>) => def.run(ctx)) as DagFunction);
    return ref;
  };
}
