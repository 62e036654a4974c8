/**
 * Graph layouts, cached by DAG version hash (a version never changes, so its layout never does).
 *
 * Up to DAGRE_MAX tasks dagre lays the graph out, in a worker thread: it takes seconds at 1,000 tasks and
 * grows faster than linearly, so it must not block the server. Above that (dagre would take minutes) a
 * plain layered layout: columns by longest path from a root, rows ordered by the mean row of each task's
 * upstream (one barycentre sweep). It is readable with zoom, which is what a 10,000-task graph allows.
 */
import { Worker } from 'node:worker_threads';
import { dagreLayout, nodeWidth, NODE_H, type GraphLayout, type LayoutInput } from './layout-dagre.js';

export type { GraphLayout } from './layout-dagre.js';

export const DAGRE_MAX = 1500;
const CACHE_MAX = 64;
/** Kept as the JSON text sent: a 10,000-task layout is megabytes, stringified once. */
const cache = new Map<string, Promise<string>>();

/** The layout of a version, as JSON text ({hash, width, height, nodes, edges, algorithm}). */
export function layoutJson(hash: string, load: () => Promise<LayoutInput>): Promise<string> {
  const hit = cache.get(hash);
  if (hit) return hit;
  const p = load()
    .then((input) => (input.tasks.length <= DAGRE_MAX ? inWorker(input) : layeredLayout(input)))
    .then((layout) => JSON.stringify({ hash, ...layout }));
  cache.set(hash, p);
  p.catch(() => cache.delete(hash));
  // Oldest out first (Map keeps insertion order).
  while (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value!);
  return p;
}

async function inWorker(input: LayoutInput): Promise<GraphLayout> {
  // Under tsx (bin/dev.js, benchmarks) a worker thread cannot load TypeScript: lay out in this thread.
  if (import.meta.url.endsWith('.ts')) return dagreLayout(input);
  const w = new Worker(new URL('./layout-worker.js', import.meta.url), { workerData: input });
  return new Promise((resolve, reject) => {
    w.once('message', (m: GraphLayout) => resolve(m));
    w.once('error', reject);
    w.once('exit', (code) => code !== 0 && reject(new Error(`layout worker exited with ${code}`)));
  });
}

export function layeredLayout(input: LayoutInput): GraphLayout {
  const ids = input.tasks.map((t) => t.taskId);
  const byId = new Map(input.tasks.map((t) => [t.taskId, t]));
  const rank = new Map<string, number>();
  const rankOf = (id: string): number => {
    const known = rank.get(id);
    if (known !== undefined) return known;
    // Iterative longest path (deep chains would overflow recursion).
    const stack: string[] = [id];
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const ups = byId.get(top)?.upstream ?? [];
      const todo = ups.filter((u) => !rank.has(u) && byId.has(u));
      if (todo.length) {
        stack.push(...todo);
        continue;
      }
      stack.pop();
      rank.set(
        top,
        ups.reduce((m, u) => Math.max(m, (rank.get(u) ?? -1) + 1), 0),
      );
    }
    return rank.get(id)!;
  };
  const columns: string[][] = [];
  for (const id of ids) (columns[rankOf(id)] ??= []).push(id);
  const row = new Map<string, number>();
  const colX: number[] = [];
  let x = 10;
  let height = 0;
  columns.forEach((col, c) => {
    if (c > 0) {
      const mean = (id: string) => {
        const ups = byId.get(id)!.upstream.filter((u) => row.has(u));
        return ups.length ? ups.reduce((s, u) => s + row.get(u)!, 0) / ups.length : 0;
      };
      col.sort((a, b) => mean(a) - mean(b));
    }
    col.forEach((id, i) => row.set(id, i));
    colX[c] = x;
    x += Math.max(...col.map(nodeWidth)) + 48;
    height = Math.max(height, col.length * (NODE_H + 12) + 10);
  });
  const pos = (id: string) => ({ x: colX[rank.get(id)!]!, y: 10 + row.get(id)! * (NODE_H + 12) });
  return {
    width: x,
    height,
    nodes: ids.map((id) => ({
      id,
      ...pos(id),
      w: nodeWidth(id),
      h: NODE_H,
      operator: byId.get(id)!.operator,
    })),
    edges: input.tasks.flatMap((t) =>
      t.upstream
        .filter((u) => byId.has(u))
        .map((u) => {
          const a = pos(u);
          const b = pos(t.taskId);
          return {
            from: u,
            to: t.taskId,
            points: [a.x + nodeWidth(u), a.y + NODE_H / 2, b.x, b.y + NODE_H / 2],
          };
        }),
    ),
    algorithm: 'layered',
  };
}
