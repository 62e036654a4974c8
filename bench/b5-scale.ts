/**
 * B5 scheduler scale: DAGs of 1,000 and 10,000 no-op tasks shaped as a fan-out, parallel linear chains
 * (of 100 tasks each) and a binary tree, with a worker whose tasks return at once. Makespan, scheduler
 * CPU seconds and SQL statements per task; the 10,000-task figures are compared with the 1,000-task ones
 * per task, so growth shows as a ratio (1 = linear).
 */
import { memoryFigures, type Benchmark } from './context.js';
import { withEnv } from './engine.js';
import type { Figure } from './stats.js';

type Shape = 'fan-out' | 'chains' | 'tree';

export function shapeSource(id: string, shape: Shape, n: number): string {
  const upstream =
    shape === 'fan-out'
      ? 'undefined'
      : shape === 'chains'
        ? 'i % 100 === 0 ? undefined : tasks[i - 1]'
        : 'i === 0 ? undefined : tasks[(i - 1) >> 1]';
  return `
const d = dag(${JSON.stringify(id)});
const tasks = [];
for (let i = 0; i < ${n}; i++) tasks.push(d.node('t' + i, { upstream: ${upstream}, run: () => null }));
export default d;
`;
}

export const b5: Benchmark = {
  id: 'b5',
  title: 'B5 scheduler scale',
  timeoutMs: (quick) => (quick ? 150_000 : 420_000),
  async run(ctx) {
    const B = 'B5 scale';
    const shapes: Shape[] = ctx.quick ? ['fan-out'] : ['fan-out', 'chains', 'tree'];
    const figures: Figure[] = [];
    await withEnv(async (e) => {
      const warm = (await e.addDagFile('warm.ts', shapeSource('warm', 'fan-out', 1))).get('warm')!;
      const s = await e.scheduler();
      const w = await e.worker(32);
      await e.waitRuns(await e.trigger(warm), 30_000);
      for (const shape of shapes) {
        const perTask = new Map<number, { ms: number; cpu: number; q: number }>();
        for (const n of [1000, 10_000]) {
          const id = `${shape.replace('-', '_')}_${n}`;
          const dag = (await e.addDagFile(`${id}.ts`, shapeSource(id, shape, n))).get(id)!;
          const s0 = await s.stats();
          const ids = await e.trigger(dag);
          await e.waitRuns(ids, 300_000);
          const s1 = await s.stats();
          const [t] = await e.runTimes(ids);
          const makespan = (t!.ended - t!.created) / 1000;
          const cpu = s1.cpuSeconds - s0.cpuSeconds;
          const q = (s1.statements - s0.statements) / n;
          ctx.log(
            `  ${shape} ${n}: ${makespan.toFixed(2)} s, scheduler CPU ${cpu.toFixed(2)} s, ${q.toFixed(2)} statements/task`,
          );
          perTask.set(n, { ms: (makespan * 1000) / n, cpu: cpu / n, q });
          const small = perTask.get(1000)!;
          const growth = n === 1000 ? undefined : { name: 'linear from 1,000', value: 0 };
          figures.push(
            {
              bench: B,
              metric: `${shape} ${n.toLocaleString('en-US')} makespan`,
              value: makespan,
              unit: 's',
              baseline: growth && { ...growth, value: (small.ms * n) / 1000 },
              // Linear: at most 1.5 times the 1,000-task makespan scaled to n.
              target:
                n === 10_000
                  ? {
                      text: '<= 10 s, <= 1.5x linear',
                      met: makespan <= 10 && makespan <= (1.5 * small.ms * n) / 1000,
                    }
                  : undefined,
            },
            {
              bench: B,
              metric: `${shape} ${n.toLocaleString('en-US')} scheduler CPU`,
              value: cpu,
              unit: 's',
              baseline: growth && { ...growth, value: small.cpu * n },
            },
            {
              bench: B,
              metric: `${shape} ${n.toLocaleString('en-US')} scheduler statements/task`,
              value: q,
              unit: '',
              baseline: growth && { ...growth, value: small.q },
            },
          );
        }
      }
      const sFinal = await s.stats();
      const wFinal = await w.stats();
      figures.push(...memoryFigures(ctx, 'B5', sFinal, wFinal));
    });
    return figures;
  },
};
