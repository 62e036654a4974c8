/**
 * B3 process tasks: bash tasks running /bin/true at worker concurrency 2, 8 and 16, against spawning
 * /bin/true from Node at the same concurrency (the floor of process tasks on this machine).
 */
import { spawn } from 'node:child_process';
import type { Benchmark } from './context.js';
import { withEnv } from './engine.js';
import { atLeast, type Figure } from './stats.js';

/** Spawns /bin/true `count` times, `concurrency` at once; returns spawns per second. */
export async function rawSpawnRate(count: number, concurrency: number): Promise<number> {
  let next = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const c = spawn('/bin/true', { stdio: 'ignore' });
      c.on('error', reject);
      c.on('exit', () => resolve());
    });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < count) await one();
    }),
  );
  return count / ((performance.now() - t0) / 1000);
}

const dagSource = (n: number) => `
const d = dag('procs');
for (let i = 0; i < ${n}; i++) d.bash('t' + i, { command: '/bin/true' });
export default d;
`;

export const b3: Benchmark = {
  id: 'b3',
  title: 'B3 process tasks',
  timeoutMs: (quick) => (quick ? 120_000 : 300_000),
  async run(ctx) {
    const B = 'B3 process';
    const n = ctx.quick ? 150 : 500;
    const figures: Figure[] = [];
    await withEnv(async (e) => {
      const dag = (await e.addDagFile('procs.ts', dagSource(n))).get('procs')!;
      await e.scheduler();
      for (const c of [2, 8, 16]) {
        const w = await e.worker(c);
        const ids = await e.trigger(dag);
        await e.waitRuns(ids, 240_000);
        const [t] = await e.runTimes(ids);
        await w.stop();
        const rate = n / ((t!.ended - t!.created) / 1000);
        const raw = await rawSpawnRate(n, c);
        ctx.log(`  concurrency ${c}: ${rate.toFixed(0)} tasks/s, raw ${raw.toFixed(0)}/s`);
        figures.push({
          bench: B,
          metric: `bash /bin/true, concurrency ${c}`,
          value: rate,
          unit: 'tasks/s',
          baseline: { name: 'raw spawn', value: raw },
          target: atLeast(rate / raw, 0.7, '>= 70% of raw'),
        });
      }
    });
    return figures;
  },
};
