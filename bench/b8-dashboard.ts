/**
 * B8 dashboard: a DAG of 10,000 tasks (100 layers of 100, with 10 runs) and a DAG of 20 tasks with 5,000
 * runs, stored directly (no scheduler), served by `airtasks web` in this process, and opened in Debian's
 * chromium: milliseconds from navigation until its graph and its grid are drawn, first (layout computed)
 * and again (layout cached), and the API's answers alone. Goal (issue 18): under 2 s each.
 * Needs `npm run build` (the pages' bundle) and /usr/bin/chromium.
 */
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { createLogger } from '../src/core/logger.js';
import { dag } from '../src/engine/dag/builder.js';
import { dagHash } from '../src/engine/dag/serialize.js';
import { upsertDag } from '../src/engine/store/dags.js';
import { changeStamp } from '../src/services/dashboard.js';
import { openEngine } from '../src/services/engine.js';
import { startWebServer } from '../src/web/server.js';
import type { Benchmark } from './context.js';
import { DATABASE_URL, withEnv, type BenchEnv } from './engine.js';
import { atMost, skipped, type Figure } from './stats.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];
const STATES = ['success', 'success', 'success', 'failed', 'upstream_failed', 'running', 'queued', 'none'];

/** Stores a DAG of `layers` × `width` bash tasks, each after two tasks of the layer before. */
async function storeDag(e: BenchEnv, id: string, layers: number, width: number): Promise<string> {
  const d = dag(id);
  const tasks: ReturnType<typeof d.bash>[] = [];
  for (let l = 0; l < layers; l++)
    for (let i = 0; i < width; i++) {
      const up = l === 0 ? [] : [tasks[(l - 1) * width + i]!, tasks[(l - 1) * width + ((i + 1) % width)]!];
      tasks.push(d.bash(`l${l}_t${i}`, { command: 'true', upstream: up }));
    }
  const s = d.serialize(`${id}.ts`);
  const hash = dagHash(s);
  await upsertDag(e.db, s, hash);
  return hash;
}

/** `runs` runs of the DAG, one a minute back from now, their tasks in assorted states (set-based SQL). */
async function storeRuns(e: BenchEnv, dagId: string, hash: string, runs: number) {
  await e.db.query(
    `INSERT INTO dag_runs (run_id, dag_id, dag_hash, state, created_at, logical_date)
     SELECT $1 || '_' || g, $1, $2, (ARRAY['success','failed','success','running'])[1 + g % 4],
            now() - make_interval(mins => g), now() - make_interval(mins => g)
     FROM generate_series(1, $3) g`,
    [dagId, hash, runs],
  );
  await e.db.query(
    `INSERT INTO task_instances (run_id, task_id, state, queue, try_number)
     SELECT r.run_id, t->>'taskId', ($3::text[])[1 + (abs(hashtext(r.run_id || (t->>'taskId'))) % 8)], 'worker', 1
     FROM dag_runs r, dag_versions v, jsonb_array_elements(v.serialized->'tasks') t
     WHERE r.dag_id = $1 AND v.hash = $2`,
    [dagId, hash, STATES],
  );
}

export const b8: Benchmark = {
  id: 'b8',
  title: 'B8 dashboard',
  timeoutMs: () => 600_000,
  async run(ctx) {
    const B = 'B8 dashboard';
    if (!existsSync(CHROMIUM)) return [skipped(B, 'page loads', `${CHROMIUM} is missing`)];
    return withEnv(async (e) => {
      const figures: Figure[] = [];
      ctx.log('  storing a 10,000-task DAG with 10 runs and a 20-task DAG with 5,000 runs');
      const bigHash = await storeDag(e, 'b8_big', 100, 100);
      await storeRuns(e, 'b8_big', bigHash, ctx.quick ? 3 : 10);
      const manyHash = await storeDag(e, 'b8_many', 4, 5);
      await storeRuns(e, 'b8_many', manyHash, 5000);
      await e.db.query('ANALYZE');
      const web = await startWebServer({
        connection: { databaseUrl: DATABASE_URL, schema: e.schema, brokerUrl: undefined },
        port: 0,
        logger: createLogger({ level: 'warn', name: 'bench' }),
      });
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
      try {
        const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
        // Time from navigation until the graph (nodes drawn) and the grid (cells drawn) are both there.
        const load = async (dagId: string) => {
          await page.goto('about:blank');
          const t0 = performance.now();
          await page.goto(`${web.url}#/dags/${dagId}`);
          await page.waitForSelector('[data-testid="graph"] svg path[fill], [data-testid="graph"] g.node', {
            timeout: 120_000,
          });
          await page.waitForSelector('[data-testid="grid"] .cell[data-state]', { timeout: 120_000 });
          const outside = performance.now() - t0;
          // In the browser, from its navigation start: the later of the page's two marks.
          const inside = (await page.evaluate(
            `Math.max(...['airtasks:graph-drawn', 'airtasks:grid-drawn'].map((n) => performance.getEntriesByName(n)[0].startTime))`,
          )) as number;
          return { outside, inside };
        };
        const api = async (path: string) => {
          const t0 = performance.now();
          const r = await fetch(new URL(path, web.url));
          await r.arrayBuffer();
          if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
          return performance.now() - t0;
        };
        for (const [dagId, what] of [
          ['b8_big', '10,000-task DAG'],
          ['b8_many', 'DAG with 5,000 runs'],
        ] as const) {
          const cold = await load(dagId);
          const warm = [await load(dagId), await load(dagId), await load(dagId)].sort(
            (a, b) => a.inside - b.inside,
          )[1]!;
          const first = cold.inside;
          const again = warm.inside;
          ctx.log(
            `  ${what}: with the browser driver's own overhead: first ${cold.outside.toFixed(0)} ms, again ${warm.outside.toFixed(0)} ms`,
          );
          const grid = await api(`/api/v1/dags/${dagId}/grid?limit=25&taskLimit=100`);
          const graph = await api(`/api/v1/dags/${dagId}/graph`);
          const details = await api(`/api/v1/dags/${dagId}`);
          ctx.log(
            `  ${what}: API grid ${grid.toFixed(0)} ms, graph ${graph.toFixed(0)} ms, details ${details.toFixed(0)} ms`,
          );
          ctx.log(`  ${what}: first ${first.toFixed(0)} ms, again ${again.toFixed(0)} ms`);
          figures.push(
            {
              bench: B,
              metric: `${what}: graph + grid drawn, first load`,
              value: first,
              unit: 'ms',
              target: atMost(first, 2000, '< 2 s'),
            },
            {
              bench: B,
              metric: `${what}: graph + grid drawn, again (median of 3)`,
              value: again,
              unit: 'ms',
              target: atMost(again, 2000, '< 2 s'),
            },
            { bench: B, metric: `${what}: grid API (25 runs × 100 tasks)`, value: grid, unit: 'ms' },
            { bench: B, metric: `${what}: graph API (cached layout)`, value: graph, unit: 'ms' },
            { bench: B, metric: `${what}: DAG details API (every task)`, value: details, unit: 'ms' },
          );
        }
        // What the live-update poller costs each second per topic (docs/web.md, Live updates).
        const engine = await openEngine({ databaseUrl: DATABASE_URL, schema: e.schema });
        const conn = { databaseUrl: DATABASE_URL, schema: e.schema, engine };
        const stampMs = async (runId?: string) => {
          const times: number[] = [];
          for (let i = 0; i < 10; i++) {
            const t0 = performance.now();
            await changeStamp({ ...conn, ...(runId ? { runId } : {}) });
            times.push(performance.now() - t0);
          }
          return times.sort((a, b) => a - b)[5]!;
        };
        figures.push(
          {
            bench: B,
            metric: 'live poll: stamp of a 10,000-task run (median)',
            value: await stampMs('b8_big_1'),
            unit: 'ms',
          },
          {
            bench: B,
            metric: 'live poll: stamp of the overview pages (median)',
            value: await stampMs(),
            unit: 'ms',
          },
        );
        await engine.close();
        await page.goto(`${web.url}#/dags/b8_big`);
        await page.waitForSelector('[data-testid="grid"] .cell[data-state]');
        await page.screenshot({ path: 'test-artifacts/web/bench-10k.png' }).catch(() => undefined);
      } finally {
        await browser.close();
        await web.close();
      }
      return figures;
    });
  },
};
