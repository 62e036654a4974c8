/**
 * B5m mapped scale, beside B5: one run whose task is mapped over 1,000 and then 10,000 items of an upstream
 * output (no-op node items, a worker of 32 slots), with a fan-in that sums them. Makespan from the run's
 * creation to its end, scheduler CPU and statements per item; the 10,000-item figures are compared with
 * the 1,000-item ones scaled linearly (ratio 1 = linear).
 */
import { memoryFigures, type Benchmark } from './context.js';
import { withEnv } from './engine.js';
import type { Figure } from './stats.js';

export function mappedSource(id: string, n: number): string {
  return `
const d = dag(${JSON.stringify(id)});
const list = d.node('list', { run: () => Array.from({ length: ${n} }, (_, i) => i) });
const items = d.node('item', { map: { over: list, maxItems: ${n} }, run: (ctx) => ctx.item });
d.node('sum', { upstream: items, run: (ctx) => ctx.output(items).reduce((a, b) => a + b, 0) });
export default d;
`;
}

export const b5m: Benchmark = {
  id: 'b5m',
  title: 'B5m mapped scale',
  timeoutMs: (quick) => (quick ? 150_000 : 300_000),
  async run(ctx) {
    const B = 'B5m mapped';
    const figures: Figure[] = [];
    await withEnv(async (e) => {
      const warm = (await e.addDagFile('warm.ts', mappedSource('warm', 2))).get('warm')!;
      const s = await e.scheduler();
      const w = await e.worker(32);
      await e.waitRuns(await e.trigger(warm), 30_000);
      const perItem = new Map<number, { ms: number; cpu: number; q: number }>();
      for (const n of [1000, 10_000]) {
        const id = `mapped_${n}`;
        const dag = (await e.addDagFile(`${id}.ts`, mappedSource(id, n))).get(id)!;
        const s0 = await s.stats();
        const ids = await e.trigger(dag);
        await e.waitRuns(ids, 240_000);
        const s1 = await s.stats();
        const [t] = await e.runTimes(ids);
        const makespan = (t!.ended - t!.created) / 1000;
        const cpu = s1.cpuSeconds - s0.cpuSeconds;
        const q = (s1.statements - s0.statements) / n;
        ctx.log(
          `  mapped ${n}: ${makespan.toFixed(2)} s, scheduler CPU ${cpu.toFixed(2)} s, ${q.toFixed(2)} statements/item`,
        );
        perItem.set(n, { ms: (makespan * 1000) / n, cpu: cpu / n, q });
        const small = perItem.get(1000)!;
        const growth = n === 1000 ? undefined : { name: 'linear from 1,000', value: 0 };
        const label = `map over ${n.toLocaleString('en-US')}`;
        figures.push(
          {
            bench: B,
            metric: `${label} makespan`,
            value: makespan,
            unit: 's',
            baseline: growth && { ...growth, value: (small.ms * n) / 1000 },
            // Linear: at most 1.5 times the 1,000-item makespan scaled to n.
            target:
              n === 10_000
                ? { text: '<= 1.5x linear', met: makespan <= (1.5 * small.ms * n) / 1000 }
                : undefined,
          },
          {
            bench: B,
            metric: `${label} scheduler CPU`,
            value: cpu,
            unit: 's',
            baseline: growth && { ...growth, value: small.cpu * n },
          },
          {
            bench: B,
            metric: `${label} scheduler statements/item`,
            value: q,
            unit: '',
            baseline: growth && { ...growth, value: small.q },
          },
        );
      }
      const sFinal = await s.stats();
      const wFinal = await w.stats();
      figures.push(...memoryFigures(ctx, 'B5m', sFinal, wFinal));
    });
    return figures;
  },
};
