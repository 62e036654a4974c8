/**
 * trigger_dag and multi_trigger: start runs of another DAG from a task.
 *
 * The worker creates the runs through the store itself (it has the database), pinned to the target DAG's
 * current version, with conf validated against the target's params before any run is written. Run ids are
 * derived from (parent run id, task id, item index), so a retried or duplicated try finds its runs already
 * there and creates nothing twice. The output is the run id (trigger_dag) or the run ids in item order
 * (multi_trigger). With waitForCompletion the task waits for the runs and fails if one did not succeed.
 */
import { createHash } from 'node:crypto';
import { DEFAULT_MAX_ITEMS } from '../dag/operator-args.js';
import { applyParams, ConfValidationError } from '../dag/params.js';
import { renderDeep, templateContext } from '../templates/render.js';
import { describeValue as describe } from './dag-functions.js';
import { TaskFailure, type Operator, type OperatorContext } from './types.js';
import { callUserCode, taskCall } from './user-code.js';

interface TriggerArgs {
  dagId: string;
  waitForCompletion: boolean;
  pollIntervalMs: number;
  conf?: Record<string, unknown>;
  confSource?: string;
  items?: unknown[];
  itemsSource?: string;
  maxItems?: number;
}

const MAX_RUN_ID = 250;
const TERMINAL = new Set(['success', 'failed', 'cancelled']);

/** The id of the run a trigger task starts for one item: the same on every try of the task. */
export function triggeredRunId(parentRunId: string, taskId: string, index: number): string {
  const plain = `${parentRunId}__${taskId}__${index}`;
  if (plain.length <= MAX_RUN_ID) return plain;
  const h = createHash('sha256').update(`${parentRunId}\0${taskId}`).digest('hex').slice(0, 32);
  return `triggered__${h}__${index}`;
}

/** An item's conf: a plain object as it is; any other value as { item: value }. */
export function itemConf(item: unknown): Record<string, unknown> {
  if (item !== null && typeof item === 'object' && !Array.isArray(item))
    return item as Record<string, unknown>;
  return { item };
}

export const triggerDagOperator: Operator = {
  name: 'trigger_dag',
  async execute(ctx) {
    const a = ctx.task.args as unknown as TriggerArgs;
    let conf: unknown = {};
    if (a.confSource !== undefined) {
      conf = await callUserCode(taskCall(ctx, 'conf'), ctx);
    } else if (a.conf !== undefined) {
      conf = renderDeep(a.conf, templateContext(ctx.run));
    }
    if (conf === undefined || conf === null) conf = {};
    if (typeof conf !== 'object' || Array.isArray(conf)) {
      throw new TaskFailure(`the conf of the triggered run must be an object, got ${describe(conf)}`);
    }
    const [runId] = await launch(ctx, a, [toJson(conf, 'the conf') as Record<string, unknown>]);
    return { output: runId! };
  },
};

export const multiTriggerOperator: Operator = {
  name: 'multi_trigger',
  async execute(ctx) {
    const a = ctx.task.args as unknown as TriggerArgs;
    const max = a.maxItems ?? DEFAULT_MAX_ITEMS;
    let items: unknown[];
    if (a.itemsSource !== undefined) {
      items = (await callUserCode({ ...taskCall(ctx, 'items'), maxItems: max }, ctx)) as unknown[];
    } else if (Array.isArray(a.items)) {
      items = a.items;
    } else {
      throw new TaskFailure('no items: multi_trigger needs a list, a generator, or a function returning one');
    }
    if (items.length === 0) {
      throw new TaskFailure(`no items: the list is empty, so no run of "${a.dagId}" would start`);
    }
    if (items.length > max) {
      throw new TaskFailure(
        `${items.length} items is more than maxItems (${max}); raise maxItems to start them all`,
      );
    }
    const confs = items.map((item, i) => toJson(itemConf(item), `item #${i}`) as Record<string, unknown>);
    return { output: await launch(ctx, a, confs) };
  },
};

async function launch(ctx: OperatorContext, a: TriggerArgs, confs: Array<Record<string, unknown>>) {
  const launcher = ctx.runs;
  if (!launcher) throw new TaskFailure(`${ctx.task.operator} cannot start runs here (no run launcher)`);
  const target = await launcher.currentVersion(a.dagId);
  if (!target) {
    throw new TaskFailure(
      `unknown DAG "${a.dagId}" (the target of ${ctx.task.operator} task "${ctx.task.taskId}"): no active DAG has this id; check the id and that its file is in the dags folder (airtasks dags list)`,
    );
  }
  // Every conf is checked before any run is written: all of them start, or none.
  const problems: string[] = [];
  const checked = confs.map((conf, i) => {
    try {
      return applyParams(target.dag.params, conf, a.dagId);
    } catch (err) {
      if (!(err instanceof ConfValidationError)) throw err;
      problems.push(`${confs.length > 1 ? `item #${i}: ` : ''}${err.problems.join('; ')}`);
      return conf;
    }
  });
  if (problems.length > 0) {
    const shown = problems.slice(0, 5).join(' | ');
    throw new TaskFailure(
      `invalid conf for DAG "${a.dagId}": ${shown}${problems.length > 5 ? ` | and ${problems.length - 5} more` : ''}`,
    );
  }
  // The try's task id: each item of a mapped trigger task (`<task>[<index>]`) starts runs of its own.
  const runIds = checked.map((_, i) => triggeredRunId(ctx.run.runId, ctx.run.taskId, i));
  const { created, dagIdOf } = await launcher.createRuns(
    checked.map((conf, i) => ({ runId: runIds[i]!, dagId: a.dagId, dagHash: target.hash, conf })),
  );
  const foreign = runIds.filter((id) => dagIdOf.get(id) !== a.dagId);
  if (foreign.length > 0) {
    throw new TaskFailure(
      `run id ${foreign[0]} is taken by a run of DAG "${dagIdOf.get(foreign[0]!) ?? '?'}", not "${a.dagId}"`,
    );
  }
  const existed = runIds.length - created.length;
  ctx.log.system(
    `started ${created.length} run(s) of ${a.dagId} (version ${target.hash})` +
      (existed > 0 ? `; ${existed} existed already (an earlier try started them)` : ''),
  );
  for (const id of runIds) ctx.log.stdout(id);
  if (a.waitForCompletion) await waitForRuns(ctx, a, runIds);
  return runIds;
}

async function waitForRuns(ctx: OperatorContext, a: TriggerArgs, runIds: string[]) {
  const launcher = ctx.runs!;
  ctx.log.system(`waiting for ${runIds.length} run(s) of ${a.dagId}`);
  for (;;) {
    const states = await launcher.runStates(runIds);
    const open = runIds.filter((id) => !TERMINAL.has(states.get(id) ?? ''));
    if (open.length === 0) {
      const bad = runIds.filter((id) => states.get(id) !== 'success');
      if (bad.length > 0) {
        throw new TaskFailure(
          `${bad.length} of ${runIds.length} run(s) of ${a.dagId} did not succeed: ${bad
            .slice(0, 5)
            .map((id) => `${id} (${states.get(id) ?? 'missing'})`)
            .join(', ')}${bad.length > 5 ? ', ...' : ''}`,
        );
      }
      ctx.log.system(`all ${runIds.length} run(s) of ${a.dagId} succeeded`);
      return;
    }
    await abortableSleep(a.pollIntervalMs, ctx.signal);
    if (ctx.signal.aborted) throw new TaskFailure(`stopped: ${String(ctx.signal.reason ?? 'aborted')}`);
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function toJson(v: unknown, what: string): unknown {
  let json: string | undefined;
  try {
    json = JSON.stringify(v);
  } catch (err) {
    throw new TaskFailure(`${what} is not JSON data: ${(err as Error).message}`);
  }
  if (json === undefined) throw new TaskFailure(`${what} is not JSON data`);
  return JSON.parse(json) as unknown;
}
