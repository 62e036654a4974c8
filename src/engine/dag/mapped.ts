/**
 * Mapped tasks: a task run once per item of a list known only at run time (Airflow's `expand`). The task's
 * own row expands it (a worker try whose output is the list); each item is a task instance of its own,
 * `<task>[<index>]` ('[' is never part of a task id), with its own tries, logs, retries and clear. This
 * module names the items and turns the builder's `map` option into its stored form.
 */
import { DEFAULT_MAX_MAP_ITEMS, type SerializedMap, type SerializedTask } from '../../core/dag-model.js';
import type { DagFunction } from './functions.js';
import type { MapOptions } from './options.js';
import { taskError } from './validate.js';

const ITEM_ID = /^(.+)\[(\d+)\]$/;

/** The task instance id of a mapped task's item. */
export function itemId(taskId: string, index: number): string {
  return `${taskId}[${index}]`;
}

/** The mapped task and index an item's id names; null for any other id. */
export function parseItemId(id: string): { taskId: string; index: number } | null {
  const m = ITEM_ID.exec(id);
  return m ? { taskId: m[1]!, index: Number(m[2]) } : null;
}

/** The ids of a mapped task's n items, in item order. */
export function itemIds(taskId: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => itemId(taskId, i));
}

/** The function key of a mapped task's items function in Dag.functions ('#' is never part of an id). */
export function mapFunctionKey(taskId: string): string {
  return `${taskId}#map`;
}

/** The stored form of a task's `map` option, and the items function to keep, if any. */
export function mapSpec(
  dagId: string,
  taskId: string,
  o: MapOptions<unknown>,
): { map: SerializedMap; fn?: DagFunction; from?: string } {
  if (o === null || typeof o !== 'object' || !('over' in o))
    throw taskError(
      dagId,
      taskId,
      'map needs { over: a list, an upstream task, or a function of the context }',
    );
  const maxItems = o.maxItems ?? DEFAULT_MAX_MAP_ITEMS;
  const map: SerializedMap = { maxItems };
  if (o.maxActiveItems !== undefined) map.maxActiveItems = o.maxActiveItems;
  const over = o.over as unknown;
  if (typeof over === 'function') {
    map.source = over.toString();
    return { map, fn: over as DagFunction };
  }
  if (Array.isArray(over)) {
    // Stored as JSON: what the DAG file gave, as every run (and retry) will see it.
    map.items = JSON.parse(JSON.stringify(over)) as unknown[];
    return { map };
  }
  if (over && typeof over === 'object' && typeof (over as { id?: unknown }).id === 'string') {
    map.from = (over as { id: string }).id;
    return { map, from: map.from };
  }
  throw taskError(
    dagId,
    taskId,
    `map.over must be a list, an upstream task or a function of the context (got ${over === null ? 'null' : typeof over})`,
  );
}

/**
 * The upstream tasks whose outputs a try reads: an item reads its item, not the whole list it came from
 * (10,000 items each reading a 10,000-item list would be quadratic), so that task is left out for it.
 */
export function tryUpstream(task: SerializedTask, isItem: boolean): string[] {
  const from = task.map?.from;
  return isItem && from !== undefined ? task.upstream.filter((u) => u !== from) : task.upstream;
}
