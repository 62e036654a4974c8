import { createHash } from 'node:crypto';
import type { SerializedDag } from '../../core/dag-model.js';

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
