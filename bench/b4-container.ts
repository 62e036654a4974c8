/**
 * B4 container tasks: a chain of docker tasks running `true` in the local base image, against
 * `docker run --rm` of the same image and command, one after another. Skipped when there is no Docker.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { Benchmark } from './context.js';
import { withEnv } from './engine.js';
import { atMost, mean, skipped, type Figure } from './stats.js';

const run = promisify(execFile);
const BUILD_BASE = fileURLToPath(new URL('../scripts/docker/build-base-image.sh', import.meta.url));

async function dockerImage(): Promise<string | null> {
  try {
    await run('docker', ['info'], { timeout: 10_000 });
  } catch {
    return null;
  }
  const { stdout } = await run('bash', [BUILD_BASE], { timeout: 300_000 });
  return stdout.trim().split('\n').pop()!;
}

const dagSource = (n: number, image: string) => `
const d = dag('containers');
let prev = undefined;
for (let i = 0; i < ${n}; i++)
  prev = d.docker('t' + i, { image: ${JSON.stringify(image)}, command: ['true'], pullPolicy: 'never', output: 'none', upstream: prev });
export default d;
`;

export const b4: Benchmark = {
  id: 'b4',
  title: 'B4 container tasks',
  timeoutMs: (quick) => (quick ? 120_000 : 240_000),
  async run(ctx) {
    const B = 'B4 container';
    const image = await dockerImage();
    if (!image)
      return [
        skipped(B, 'docker task vs docker run --rm', 'docker unavailable (scripts/docker/ensure-dockerd.sh)'),
      ];
    const n = ctx.quick ? 5 : 15;
    const bare: number[] = [];
    await run('docker', ['run', '--rm', image, 'true']); // warm
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await run('docker', ['run', '--rm', image, 'true']);
      bare.push(performance.now() - t0);
    }
    const perTask = await withEnv(async (e) => {
      const dag = (await e.addDagFile('containers.ts', dagSource(n, image))).get('containers')!;
      await e.scheduler();
      await e.worker(1);
      const ids = await e.trigger(dag);
      await e.waitRuns(ids, 180_000);
      const [t] = await e.runTimes(ids);
      return (t!.ended - t!.created) / n;
    });
    const bareMs = mean(bare);
    ctx.log(`  docker task ${perTask.toFixed(0)} ms, docker run --rm ${bareMs.toFixed(0)} ms`);
    const fig: Figure = {
      bench: B,
      metric: `chain of ${n} docker tasks, per task (trigger to run end)`,
      value: perTask,
      unit: 'ms',
      baseline: { name: 'docker run --rm', value: bareMs },
      target: atMost(perTask / bareMs, 1.1, '<= 10% overhead'),
    };
    return [fig];
  },
};
