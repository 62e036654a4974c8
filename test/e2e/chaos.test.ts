/**
 * The chaos suite, short: a few runs of the interleaved DAG's shape on real scheduler and worker
 * processes while workers and schedulers are SIGKILLed, connections dropped, messages purged and
 * workers' main threads blocked.
 * `npm run chaos` runs the full version (200 runs). The seed is printed; CHAOS_SEED replays one.
 */
import { expect } from 'chai';
import { requireService } from '../helpers/env.js';
import { formatReport, runChaos } from '../chaos/harness.js';

describe('e2e: chaos (short)', function () {
  this.timeout(120_000);

  before(async function () {
    await requireService(this, 'postgres');
    await requireService(this, 'rabbitmq');
  });

  it('loses nothing and runs nothing twice while processes die, connections drop and workers block', async () => {
    const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const r = await runChaos({
      runs: 8,
      parallelRuns: 4,
      seed,
      workers: 2,
      workerConcurrency: 3,
      schedulers: 2,
      broker: 'rabbitmq',
      faultGapMs: [150, 600],
      timeoutMs: 90_000,
      minFaultRounds: 1,
    });
    const report = formatReport(r);
    process.stderr.write(`      ${report.replaceAll('\n', '\n      ')}\n`);
    expect(r.problems, report).to.deep.equal([]);
    expect(r.runsSucceeded, report).to.equal(8);
    expect(r.tasks, report).to.equal(8 * 17);
    expect(r.lost + r.duplicated + r.stuck + r.taskFailures, report).to.equal(0);
    // No two tries of a task ran at the same time, by the tasks' own clocks (worker_block's target).
    expect(r.overlaps, report).to.equal(0);
    // Faults did happen: every kind at least once (a full round before the last run starts).
    for (const [kind, n] of Object.entries(r.faults)) expect(n, `${kind}\n${report}`).to.be.at.least(1);
  });
});
