import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import {
  DAG_IMPORT,
  insertDagFile,
  startEngine,
  startRun,
  waitForRun,
  writeDagFile,
  type EngineHarness,
  type StoredDag,
} from '../helpers/engine.js';
import { requireService } from '../helpers/env.js';

const DAGS = `${DAG_IMPORT}
export const small = dag('end_small');
for (let i = 0; i < 6; i++) small.node('t' + i, { run: () => i });
`;

/**
 * Runs end because their last results are announced, not because a scheduler's periodic sweep finds them:
 * here the sweep runs once, at start. Many small runs ending together announce themselves while the
 * scheduler is busy reading; a pass that cleared its to-do set after that read lost them (until the
 * sweep, 5 s later by default).
 */
describe('runs end when their last task does, without the periodic sweep', function () {
  this.timeout(60_000);
  let engine: EngineHarness;
  let dags: Map<string, StoredDag>;

  before(async function () {
    await requireService(this, 'postgres');
    await requireService(this, 'rabbitmq');
    engine = await startEngine({
      broker: 'rabbitmq',
      scheduler: { sweepIntervalMs: 600_000 },
      worker: { concurrency: 8 },
      setup: async (d, folder) => {
        await writeFile(path.join(folder, 'package.json'), JSON.stringify({ type: 'module' }));
        await writeDagFile(folder, 'end.ts', DAGS);
        dags = await insertDagFile(d, folder, 'end.ts');
      },
    });
  });

  after(() => engine?.stop());

  it('ends every one of 40 small runs triggered together', async () => {
    const ids = [];
    for (let i = 0; i < 40; i++) ids.push(await startRun(engine.db, dags.get('end_small')!));
    const runs = await Promise.all(ids.map((id) => waitForRun(engine.db, id, 30_000)));
    expect(runs.map((r) => r.state)).to.deep.equal(ids.map(() => 'success'));
  });
});
