/**
 * The expansion of a mapped task: its own row's try, in a worker, reads the list (given in the DAG file, an
 * upstream task's output, or what a function of the context returns, called as node tasks' functions are:
 * in a thread of the process host) and returns it as its output; the scheduler then makes one task
 * instance per item.
 */
import type { SerializedMap } from '../../core/dag-model.js';
import { mapFunctionKey } from '../dag/mapped.js';
import { TaskFailure, type OperatorContext, type OperatorResult } from './types.js';
import { callUserCode, taskCall } from './user-code.js';

/** A cap of its own for the list: 10,000 short paths are over a task output's usual cap. */
export const MAP_LIST_CAP_BYTES = 16 * 1024 * 1024;

export async function expandItems(ctx: OperatorContext): Promise<OperatorResult> {
  const m = ctx.task.map as SerializedMap;
  let items: unknown[];
  if (m.items !== undefined) items = m.items;
  else if (m.from !== undefined) items = listOf(ctx.run.outputs.get(m.from), m.from);
  else {
    const call = { ...taskCall(ctx, 'items', mapFunctionKey(ctx.task.taskId)), maxItems: m.maxItems };
    items = (await callUserCode(call, ctx)) as unknown[];
  }
  if (items.length > m.maxItems) {
    throw new TaskFailure(
      `${items.length} items is more than map.maxItems (${m.maxItems}) of task "${ctx.task.taskId}"; raise map.maxItems (at most 1,000,000) or split the list`,
    );
  }
  ctx.log.system(
    items.length === 0
      ? 'mapped over an empty list: the task is skipped'
      : `mapped over ${items.length} item${items.length === 1 ? '' : 's'}`,
  );
  return { output: items };
}

/** An upstream output as the list to map over: a list, or a string holding a JSON list (a bash task's line). */
function listOf(value: unknown, from: string): unknown[] {
  let v = value;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      // Reported below, with the value.
    }
  }
  if (Array.isArray(v)) return v;
  const shown = JSON.stringify(value)?.slice(0, 60) ?? String(value);
  throw new TaskFailure(
    `the output of task "${from}" is not a list (got ${shown}); map.over needs a task that returns a list (or prints a JSON list)`,
  );
}
