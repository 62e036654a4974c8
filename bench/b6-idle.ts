/**
 * B6 idle and pickup: a scheduler that keeps a folder of 1,000 DAG files in sync, with no runs. Its CPU
 * at rest (share of one core), and how long a new or a changed DAG file takes to become triggerable.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Benchmark } from './context.js';
import { AIRTASKS_URL, sleep, withEnv, type BenchEnv } from './engine.js';
import { atMost, type Figure } from './stats.js';

const dagFile = (id: string, command: string) =>
  `import { dag } from ${JSON.stringify(AIRTASKS_URL)};\nconst d = dag(${JSON.stringify(id)});\nd.bash('only', { command: ${JSON.stringify(command)} });\nexport default d;\n`;

async function hashOf(e: BenchEnv, dagId: string): Promise<string | undefined> {
  const r = await e.db.query<{ hash: string }>(`SELECT hash FROM dags WHERE dag_id = $1 AND is_active`, [
    dagId,
  ]);
  return r.rows[0]?.hash;
}

/** Milliseconds from now until the DAG's stored hash differs from `before` (polled every 10 ms). */
async function pickup(e: BenchEnv, dagId: string, before: string | undefined, timeoutMs: number) {
  const t0 = performance.now();
  while ((await hashOf(e, dagId)) === before) {
    if (performance.now() - t0 > timeoutMs) return NaN;
    await sleep(10);
  }
  return performance.now() - t0;
}

export const b6: Benchmark = {
  id: 'b6',
  title: 'B6 idle and pickup',
  timeoutMs: () => 360_000,
  async run(ctx) {
    const B = 'B6 idle';
    const files = 1000;
    const afterParseSeconds = ctx.quick ? 10 : 30;
    const restSeconds = ctx.quick ? 20 : 60;
    return withEnv(async (e) => {
      for (let i = 0; i < files; i++)
        await writeFile(path.join(e.folder, `d${i}.ts`), dagFile(`d${i}`, 'true'));
      const t0 = performance.now();
      const s = await e.scheduler({ parse: true, parseTimeoutMs: 240_000 });
      for (;;) {
        const r = await e.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM dags WHERE is_active`);
        if (r.rows[0]!.n >= files) break;
        if (performance.now() - t0 > 240_000) throw new Error(`only ${r.rows[0]!.n} of ${files} DAGs parsed`);
        await sleep(200);
      }
      const firstParse = (performance.now() - t0) / 1000;
      ctx.log(`  ${files} DAG files parsed in ${firstParse.toFixed(1)} s`);
      // The first 30 s after the parse are reported apart: V8 frees the parse's garbage then, once (a
      // memory-reducing collection of a few hundred ms about half a minute later). At rest is what follows.
      const a0 = await s.stats();
      const wa = performance.now();
      await sleep(afterParseSeconds * 1000);
      const s0 = await s.stats();
      const w0 = performance.now();
      const afterParse = ((s0.cpuSeconds - a0.cpuSeconds) / ((w0 - wa) / 1000)) * 100;
      await sleep(restSeconds * 1000);
      const s1 = await s.stats();
      const share = ((s1.cpuSeconds - s0.cpuSeconds) / ((performance.now() - w0) / 1000)) * 100;
      const queriesPerSecond = (s1.statements - s0.statements) / ((performance.now() - w0) / 1000);
      await writeFile(path.join(e.folder, 'new.ts'), dagFile('brand_new', 'true'));
      const fresh = await pickup(e, 'brand_new', undefined, 20_000);
      const before = await hashOf(e, 'd7');
      await writeFile(path.join(e.folder, 'd7.ts'), dagFile('d7', 'echo changed'));
      const changed = await pickup(e, 'd7', before, 20_000);
      const pgFloor = { name: 'pg commit', value: ctx.floors.pgCommitMs };
      const figures: Figure[] = [
        {
          bench: B,
          metric: `scheduler CPU at rest, ${files} DAG files`,
          value: share,
          unit: '% core',
          target: atMost(share, 1, '< 1% of a core'),
        },
        { bench: B, metric: 'scheduler statements per second at rest', value: queriesPerSecond, unit: '/s' },
        {
          bench: B,
          metric: `scheduler CPU in the ${afterParseSeconds} s after the first parse`,
          value: afterParse,
          unit: '% core',
        },
        {
          bench: B,
          metric: 'new DAG file -> triggerable',
          value: fresh,
          unit: 'ms',
          baseline: pgFloor,
          target: atMost(fresh, 2000, '< 2 s'),
        },
        {
          bench: B,
          metric: 'changed DAG file -> triggerable',
          value: changed,
          unit: 'ms',
          baseline: pgFloor,
          target: atMost(changed, 2000, '< 2 s'),
        },
        { bench: B, metric: `first parse of ${files} DAG files`, value: firstParse, unit: 's' },
      ];
      return figures;
    });
  },
};
