/**
 * Stored DAG versions for a long-lived reader (the dashboard): a version never changes once stored (its
 * hash is its content), so it is read from the database once and kept, with its tasks' order. A
 * 10,000-task version is megabytes of JSON; the pages of one DAG ask for it on every answer otherwise.
 */
import { NotFoundError } from '../core/errors.js';
import type { SerializedDag } from '../core/dag-model.js';
import type { Queryable } from '../engine/store/db.js';
import * as dags from '../engine/store/dags.js';
import { getRun } from '../engine/store/runs.js';
import { paramsOf } from '../engine/dag/params.js';
import type { ConnectionOptions } from './config.js';
import type { DagDetails } from './dags.js';
import { withEngine } from './engine.js';

const KEEP = 16;
const cache = new Map<string, Promise<SerializedDag | undefined>>();

export function cachedVersion(db: Queryable, hash: string): Promise<SerializedDag | undefined> {
  const hit = cache.get(hash);
  if (hit) return hit;
  const p = dags.getVersion(db, hash);
  cache.set(hash, p);
  p.then(
    (v) => v === undefined && cache.delete(hash),
    () => cache.delete(hash),
  );
  while (cache.size > KEEP) cache.delete(cache.keys().next().value!);
  return p;
}

/** The current version's hash of a DAG. */
export async function currentHash(o: ConnectionOptions & { dagId: string }): Promise<string> {
  return withEngine(o, async (e) => {
    const row = await dags.getDag(e.db, o.dagId);
    if (!row) throw new NotFoundError('dag', o.dagId, `unknown DAG "${o.dagId}"`);
    return row.hash;
  });
}

/** A stored version by hash (a run's graph is the graph of the version it was pinned to). */
export async function versionByHash(o: ConnectionOptions & { hash: string }): Promise<SerializedDag> {
  return withEngine(o, async (e) => {
    const v = await cachedVersion(e.db, o.hash);
    if (!v) throw new NotFoundError('dag', o.hash, `no stored DAG version ${o.hash}`);
    return v;
  });
}

/**
 * `dags show`'s answer from the cached version; without `withTasks` its tasks are left out (a page of a
 * 10,000-task DAG asks for one task when it is selected: `taskId`).
 */
export async function dagHeader(
  o: ConnectionOptions & { dagId: string; withTasks: boolean; taskId?: string },
): Promise<Omit<DagDetails, 'tasks'> & { tasks?: SerializedDag['tasks']; taskCount: number }> {
  return withEngine(o, async (e) => {
    const row = await dags.getDag(e.db, o.dagId);
    if (!row) throw new NotFoundError('dag', o.dagId, `unknown DAG "${o.dagId}"`);
    const v = await cachedVersion(e.db, row.hash);
    if (!v) throw new NotFoundError('dag', o.dagId, `DAG "${o.dagId}" has no stored version`);
    const { tasks, ...rest } = v;
    const iso = (d: Date | null) => (d ? d.toISOString() : null);
    const fresh = row.schedule !== null && row.scheduled_hash === row.hash;
    return {
      ...rest,
      hash: row.hash,
      paramList: paramsOf(v.params),
      paused: row.is_paused,
      nextLogicalDate: fresh ? iso(row.next_logical_date) : null,
      nextRunAt: fresh ? iso(row.next_run_at) : null,
      lastScheduledLogicalDate: iso(row.last_scheduled_logical_date),
      taskCount: tasks.length,
      ...(o.withTasks ? { tasks } : o.taskId ? { tasks: tasks.filter((t) => t.taskId === o.taskId) } : {}),
    };
  });
}

/** The version hash a run is pinned to. */
export async function runHash(o: ConnectionOptions & { runId: string }): Promise<string> {
  return withEngine(o, async (e) => {
    const r = await getRun(e.db, o.runId);
    if (!r) throw new NotFoundError('run', o.runId, `unknown run "${o.runId}"`);
    return r.dag_hash;
  });
}
