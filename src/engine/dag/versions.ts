/** A cache of DAG versions by hash: versions never change, so entries never go stale. */
import type { Queryable } from '../store/db.js';
import { getVersion } from '../store/dags.js';
import type { SerializedDag, SerializedTask } from '../../core/dag-model.js';
import { parseItemId } from './mapped.js';

export class VersionCache {
  private readonly cache = new Map<string, SerializedDag>();
  /**
   * Reads in flight, shared: the tasks of a new version arriving together ask once. A 20,000-task version
   * costs Postgres about a second to read; 16 concurrent reads of it cost 16.
   */
  private readonly reading = new Map<string, Promise<SerializedDag>>();

  constructor(
    private readonly q: Queryable,
    private readonly max = 500,
  ) {}

  /** The version if it is cached, without a query. */
  peek(hash: string): SerializedDag | undefined {
    return this.cache.get(hash);
  }

  get(hash: string): Promise<SerializedDag> {
    const hit = this.cache.get(hash);
    if (hit) return Promise.resolve(hit);
    let p = this.reading.get(hash);
    if (!p) {
      p = this.read(hash).finally(() => this.reading.delete(hash));
      this.reading.set(hash, p);
    }
    return p;
  }

  private async read(hash: string): Promise<SerializedDag> {
    const v = await getVersion(this.q, hash);
    if (!v) throw new Error(`DAG version ${hash} is missing from the store`);
    if (this.cache.size >= this.max) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(hash, v);
    return v;
  }
}

const taskIndexes = new WeakMap<SerializedDag, Map<string, SerializedTask>>();

/**
 * A task of a DAG version by id, through an index built once per version (DAGs may have 10,000 tasks). An
 * item of a mapped task (`<task>[<index>]`) is its mapped task: it runs with that task's settings.
 */
export function taskOf(dag: SerializedDag, taskId: string): SerializedTask | undefined {
  let index = taskIndexes.get(dag);
  if (!index) taskIndexes.set(dag, (index = new Map(dag.tasks.map((t) => [t.taskId, t]))));
  const t = index.get(taskId);
  if (t) return t;
  const item = parseItemId(taskId);
  const mapped = item ? index.get(item.taskId) : undefined;
  return mapped?.map ? mapped : undefined;
}
