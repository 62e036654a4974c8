/** A cache of DAG versions by hash: versions never change, so entries never go stale. */
import type { Queryable } from '../store/db.js';
import { getVersion } from '../store/dags.js';
import type { SerializedDag } from './types.js';

export class VersionCache {
  private readonly cache = new Map<string, SerializedDag>();

  constructor(
    private readonly q: Queryable,
    private readonly max = 500,
  ) {}

  async get(hash: string): Promise<SerializedDag> {
    const hit = this.cache.get(hash);
    if (hit) return hit;
    const v = await getVersion(this.q, hash);
    if (!v) throw new Error(`DAG version ${hash} is missing from the store`);
    if (this.cache.size >= this.max) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(hash, v);
    return v;
  }
}
