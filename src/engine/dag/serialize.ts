/**
 * The serialised, code-free form of a DAG (core/dag-model.ts) as the builder writes it, and its canonical
 * JSON and hash. Optional keys are written only when set, so DAGs that do not use an option keep the hash
 * they always had.
 */
import { createHash } from 'node:crypto';
import { toMs } from '../../core/duration.js';
import {
  WEIGHT_RULES,
  type RunCallbacks,
  type SerializedDag,
  type SerializedSchedule,
  type SerializedTask,
  type TriggerRule,
  type WeightRule,
} from '../../core/dag-model.js';
import { gpuRequestProblem } from '../../core/gpus.js';
import type { DagOptions, TaskDefaults, TaskOptions } from './options.js';
import type { JsonSchema } from './params.js';
import { checkId, findCycle, taskError, validateDag } from './validate.js';
import { applyWeightRules } from './weights.js';

export const DEFAULT_QUEUE = 'worker';

/** A task as declared, its options and defaults applied; its upstream is added when the DAG is serialised. */
export type TaskSpec = Omit<SerializedTask, 'upstream'>;

/** A task's spec from its operator, arguments and options (the DAG's defaults merged in); throws if invalid. */
export function taskSpec(
  dagId: string,
  taskId: string,
  operator: string,
  args: Record<string, unknown>,
  d: TaskDefaults & Pick<TaskOptions, 'gpus'>,
): TaskSpec {
  const spec: TaskSpec = {
    taskId,
    operator,
    queue: checkId('queue', d.queue ?? DEFAULT_QUEUE),
    retries: d.retries ?? 0,
    retryDelayMs: toMs(d.retryDelay ?? '5s', 'retryDelay'),
    retryExponentialBackoff: d.retryExponentialBackoff ?? false,
    maxRetryDelayMs: toMs(d.maxRetryDelay ?? '1h', 'maxRetryDelay'),
    timeoutMs: d.timeout === undefined ? null : toMs(d.timeout, 'timeout'),
    triggerRule: (d.triggerRule ?? 'all_success') as TriggerRule,
    priorityWeight: d.priorityWeight ?? 1,
    args,
  };
  if (d.poolSlots !== undefined && d.pool === undefined)
    throw taskError(dagId, taskId, 'poolSlots needs a pool');
  if (d.pool !== undefined) {
    spec.pool = checkId('pool', d.pool);
    spec.poolSlots = d.poolSlots ?? 1;
  }
  if (d.gpus !== undefined) {
    const problem = gpuRequestProblem(d.gpus);
    if (problem) throw taskError(dagId, taskId, problem);
    // A docker task's request is one of its operator's arguments (see operator-args.ts).
    if (operator !== 'docker') spec.gpus = Array.isArray(d.gpus) ? [...d.gpus] : d.gpus;
  }
  // The weight rule itself is applied in serializeDag, when the whole graph is known.
  if (d.weightRule !== undefined && !WEIGHT_RULES.includes(d.weightRule))
    throw taskError(
      dagId,
      taskId,
      `unknown weightRule "${d.weightRule}" (one of ${WEIGHT_RULES.join(', ')})`,
    );
  return spec;
}

/** What a Dag holds that its serialised form is made of. */
export interface DagParts {
  id: string;
  options: DagOptions;
  tasks: Iterable<{ readonly spec: TaskSpec; readonly upstreamIds: ReadonlySet<string> }>;
  /** Tasks whose weightRule was set. */
  weightRules: ReadonlyMap<string, WeightRule>;
  schedule: SerializedSchedule | undefined;
  paramsSchema: JsonSchema | undefined;
  runCallbacks: RunCallbacks | undefined;
}

/** The code-free form the store keeps. Throws DagValidationError if the DAG is not valid. */
export function serializeDag(d: DagParts, fileloc: string): SerializedDag {
  const s: SerializedDag = {
    dagId: d.id,
    description: d.options.description ?? '',
    fileloc,
    tags: d.options.tags ?? [],
    tasks: [...d.tasks].map((t) => ({ ...t.spec, upstream: [...t.upstreamIds].sort() })),
  };
  // Only tasks with a weightRule other than 'absolute' change, so other DAGs keep their hash.
  if (d.weightRules.size > 0 && !findCycle(s.tasks)) s.tasks = applyWeightRules(s.tasks, d.weightRules);
  if (d.schedule) s.schedule = d.schedule;
  if (d.options.maxActiveRuns !== undefined) s.maxActiveRuns = d.options.maxActiveRuns;
  if (d.options.maxActiveTasks !== undefined) s.maxActiveTasks = d.options.maxActiveTasks;
  if (d.options.runTimeout !== undefined) s.runTimeoutMs = toMs(d.options.runTimeout, 'runTimeout');
  if (d.paramsSchema) s.params = d.paramsSchema;
  if (d.runCallbacks) s.runCallbacks = d.runCallbacks;
  validateDag(s);
  return s;
}

/** JSON with object keys sorted, so equal DAGs always hash the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

export function dagHash(d: SerializedDag): string {
  return createHash('sha256').update(canonicalJson(d)).digest('hex').slice(0, 32);
}
