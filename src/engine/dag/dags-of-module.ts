/** Finds the DAGs a DAG file's module exports. */
import { isDag, type Dag } from './builder.js';

/** Every DAG a module exports: directly, as the default export, or inside an exported array. */
export function dagsOfModule(mod: Record<string, unknown>): Dag<unknown>[] {
  const found = new Set<Dag<unknown>>();
  const scan = (m: Record<string, unknown>) => {
    for (const v of Object.values(m)) {
      if (isDag(v)) found.add(v);
      else if (Array.isArray(v)) for (const x of v) if (isDag(x)) found.add(x);
    }
  };
  scan(mod);
  // A .ts file outside a "type": "module" package is compiled to CommonJS: importing it gives the whole
  // exports object as `default` (so `export default d` arrives as `default.default`).
  const inner = mod.default as Record<string, unknown> | undefined;
  if (inner && typeof inner === 'object' && !isDag(inner) && inner.__esModule === true) scan(inner);
  return [...found];
}
