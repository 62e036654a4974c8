/**
 * The arguments each built-in operator's builder method (Dag.bash, Dag.docker ...) stores with its task,
 * checked when the DAG file is imported, and the DAG-file function the task calls, if any.
 */
import type { BuiltinOperator } from '../../core/dag-model.js';
import { toMs } from '../../core/duration.js';
import { BRANCH_OPERATOR } from './branch.js';
import type { DagFunction } from './functions.js';
import type {
  BashOptions,
  BranchOptions,
  DockerOptions,
  MultiTriggerOptions,
  NodeOptions,
  TriggerDagOptions,
} from './options.js';
import { checkId, taskError } from './validate.js';

/** What a builder method adds besides the task options: the operator, its JSON arguments, its function. */
export interface BuiltinTask {
  operator: BuiltinOperator;
  args: Record<string, unknown>;
  /** Kept in Dag.functions under the task's id. */
  fn?: DagFunction;
}

/** multiTrigger's maxItems when none is given (the operator applies it too, to tasks stored without one). */
export const DEFAULT_MAX_ITEMS = 10_000;

/** The DockerOptions that are the docker operator's arguments (the rest are task options). */
const DOCKER_ARGS = [
  'image',
  'command',
  'entrypoint',
  'env',
  'binds',
  'cpus',
  'memory',
  'shmSize',
  'networkMode',
  'user',
  'workingDir',
  'pullPolicy',
  'registryAuthVariable',
  'dockerHost',
  'gpus',
  'runtime',
  'output',
  'keepContainer',
  'stopTimeout',
  'tmpDir',
  'variables',
  'variablesMountPoint',
  'labels',
  'hostConfig',
  'createOptions',
] as const satisfies ReadonlyArray<keyof DockerOptions>;

export function bashTask(dagId: string, id: string, opts: BashOptions): BuiltinTask {
  if (typeof opts.command !== 'string' || opts.command.trim() === '')
    throw taskError(dagId, id, 'bash needs a non-empty command');
  const args: Record<string, unknown> = { command: opts.command };
  if (opts.env) args.env = opts.env;
  if (opts.cwd) args.cwd = opts.cwd;
  return { operator: 'bash', args };
}

/** A node or branch task: the function's source is stored, so a change to its code changes the hash. */
export function functionTask<Conf, T>(
  dagId: string,
  id: string,
  operator: 'node' | typeof BRANCH_OPERATOR,
  opts: NodeOptions<Conf, T> | BranchOptions<Conf>,
): BuiltinTask {
  if (typeof opts.run !== 'function') throw taskError(dagId, id, `${operator} needs a run function`);
  return { operator, args: { source: opts.run.toString() }, fn: opts.run as DagFunction };
}

export function dockerTask(dagId: string, id: string, opts: DockerOptions): BuiltinTask {
  if (typeof opts.image !== 'string' || opts.image.trim() === '')
    throw taskError(dagId, id, 'docker needs an image');
  const args: Record<string, unknown> = {};
  for (const k of DOCKER_ARGS) if (opts[k] !== undefined) args[k] = opts[k];
  return { operator: 'docker', args };
}

export function triggerDagTask<Conf>(dagId: string, id: string, opts: TriggerDagOptions<Conf>): BuiltinTask {
  const args: Record<string, unknown> = triggerArgs(dagId, id, opts);
  let fn: DagFunction | undefined;
  if (typeof opts.conf === 'function') {
    fn = opts.conf as DagFunction;
    args.confSource = opts.conf.toString();
  } else if (opts.conf !== undefined) args.conf = jsonArg(dagId, id, 'conf', opts.conf);
  return { operator: 'trigger_dag', args, fn };
}

export function multiTriggerTask<Conf>(
  dagId: string,
  id: string,
  opts: MultiTriggerOptions<Conf>,
): BuiltinTask {
  const args: Record<string, unknown> = triggerArgs(dagId, id, opts);
  const maxItems = opts.maxItems ?? DEFAULT_MAX_ITEMS;
  if (!Number.isInteger(maxItems) || maxItems < 1)
    throw taskError(dagId, id, 'maxItems must be an integer >= 1');
  args.maxItems = maxItems;
  const items = opts.items as unknown;
  let fn: DagFunction | undefined;
  if (typeof items === 'function') {
    fn = items as DagFunction;
    args.itemsSource = items.toString();
  } else if (items !== null && typeof items === 'object' && Symbol.iterator in items) {
    // A generator can be read only once, and the worker keeps the imported DAG module for many runs:
    // read it now, so every run (and every retry) sees the same items.
    args.items = jsonArg(dagId, id, 'items', [...(items as Iterable<unknown>)]);
  } else {
    throw taskError(
      dagId,
      id,
      `multiTrigger needs items: a list, a generator, or a function returning one (got ${items === undefined ? 'nothing' : items === null ? 'null' : typeof items})`,
    );
  }
  return { operator: 'multi_trigger', args, fn };
}

function triggerArgs<Conf>(
  dagId: string,
  id: string,
  opts: TriggerDagOptions<Conf> | MultiTriggerOptions<Conf>,
) {
  checkId('task', id);
  try {
    checkId('DAG', opts.dagId);
  } catch (err) {
    throw taskError(dagId, id, `target ${(err as Error).message}`);
  }
  return {
    dagId: opts.dagId,
    waitForCompletion: opts.waitForCompletion ?? false,
    pollIntervalMs: toMs(opts.pollInterval ?? '2s', 'pollInterval'),
  };
}

function jsonArg(dagId: string, id: string, name: string, v: unknown): unknown {
  let json: string | undefined;
  try {
    json = JSON.stringify(v);
  } catch {
    json = undefined;
  }
  if (json === undefined) throw taskError(dagId, id, `${name} must be JSON data`);
  return JSON.parse(json) as unknown;
}
