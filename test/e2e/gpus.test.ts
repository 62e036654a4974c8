/**
 * GPUs from the CLI: `worker --gpus 0,1` declares devices without nvidia-smi (this machine has no GPU) and
 * lends them to a bash task; a worker that detects its GPUs (a stand-in nvidia-smi on its PATH) reports
 * their model and memory; `status` shows both.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { Daemon, E2eProject, runCli } from '../helpers/cli.js';
import { requireService } from '../helpers/env.js';

const DAGS = {
  'gpus.ts': `
import { dag } from 'airtasks';

export const g = dag('e2e_gpus');
g.bash('train', { command: 'echo "$CUDA_VISIBLE_DEVICES/$AIRTASKS_GPUS"', gpus: 2 });
`,
};

describe('e2e: GPUs of workers', function () {
  this.timeout(90_000);
  const project = new E2eProject();
  let env: NodeJS.ProcessEnv;
  let smiDir: string | undefined;

  before(async function () {
    await requireService(this, 'postgres');
    env = (await project.create(DAGS)).env;
    await project.startEngine(['--gpus', '0,1']);
    smiDir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-smi-'));
    await writeFile(
      path.join(smiDir, 'nvidia-smi'),
      '#!/bin/sh\n[ "$1" = "--query-gpu=index,name,memory.total" ] || exit 9\necho "0, NVIDIA H100 80GB HBM3, 81559 MiB"\n',
    );
    await chmod(path.join(smiDir, 'nvidia-smi'), 0o755);
    const detecting = new Daemon(['worker', '-q', 'gpu_detect'], {
      ...env,
      PATH: `${smiDir}:${process.env.PATH}`,
    });
    project.daemons.push(detecting);
    await detecting.waitFor('worker started');
  });

  after(async () => {
    await project.remove();
    if (smiDir) await rm(smiDir, { recursive: true, force: true });
  });

  it('lends declared devices to a bash task, and status shows every worker with its GPUs', async () => {
    const r = await runCli(['trigger', 'dag', 'e2e_gpus', '--wait', '--json'], env);
    expect(r.code, r.stderr).to.equal(0);
    const runId = (JSON.parse(r.stdout) as { runId: string }).runId;
    const db = await project.db();
    const ti = await db.query<{ output: unknown }>(
      `SELECT output FROM "${project.schema}".task_instances WHERE run_id = $1 AND task_id = 'train'`,
      [runId],
    );
    expect(ti.rows[0]!.output).to.equal('0,1/0,1');

    const s = await runCli(['status', '--json'], env);
    expect(s.code, s.stderr).to.equal(0);
    const workers = (JSON.parse(s.stdout) as { workers: Array<{ queues: string[]; gpus: unknown }> }).workers;
    expect(workers.find((w) => w.queues.includes('worker'))!.gpus).to.deep.equal([
      { id: '0', model: null, memoryMiB: null },
      { id: '1', model: null, memoryMiB: null },
    ]);
    expect(workers.find((w) => w.queues.includes('gpu_detect'))!.gpus).to.deep.equal([
      { id: '0', model: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559 },
    ]);

    const text = (await runCli(['status'], env)).stdout;
    expect(text).to.match(/WORKER\s+HOST\s+QUEUES\s+CONCURRENCY\s+GPUS/);
    expect(text).to.match(/\sworker\s+2\s+0, 1\n/);
    expect(text).to.match(/\sgpu_detect\s+1\s+0 NVIDIA H100 80GB HBM3 \(79\.6 GiB\)/);
  });
});
