/**
 * `npm run chaos`: the full chaos suite (see harness.ts). Options: --runs N (200), --seed S (random,
 * printed), --broker rabbitmq|postgres, --parallel N (10), --workers N (3), --repeat N (1).
 * Exits 1 when any run failed or anything was lost, duplicated or left stuck.
 */
import { parseArgs } from 'node:util';
import { formatReport, runChaos } from './harness.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '200' },
    seed: { type: 'string' },
    broker: { type: 'string', default: 'rabbitmq' },
    parallel: { type: 'string', default: '10' },
    workers: { type: 'string', default: '3' },
    repeat: { type: 'string', default: '1' },
  },
});

let failed = false;
for (let i = 0; i < Number(values.repeat); i++) {
  const seed = values.seed !== undefined ? Number(values.seed) + i : Math.floor(Math.random() * 2 ** 31);
  console.error(`chaos: seed ${seed}`);
  const r = await runChaos({
    runs: Number(values.runs),
    parallelRuns: Number(values.parallel),
    seed,
    workers: Number(values.workers),
    workerConcurrency: 3,
    schedulers: 2,
    broker: values.broker === 'postgres' ? 'postgres' : 'rabbitmq',
    faultGapMs: [300, 1500],
    timeoutMs: 30 * 60_000,
    log: (l) => console.error(`chaos: ${l}`),
  });
  console.log(formatReport(r));
  console.log(JSON.stringify({ ...r, problems: r.problems.length }));
  if (
    r.runsSucceeded !== r.runs ||
    r.lost ||
    r.duplicated ||
    r.overlaps ||
    r.stuck ||
    r.taskFailures ||
    r.problems.length
  )
    failed = true;
}
process.exitCode = failed ? 1 : 0;
