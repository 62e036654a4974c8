/**
 * GPUs for bash and node tasks through the real scheduler and a worker declaring `--gpus 0,1` (no GPU on
 * this machine: the devices are declared, not used): the environment each task sees, two tasks never on
 * one device at once, and a request the worker cannot meet failing at once with the docker path's message.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { dag } from '../../src/engine/dag/builder.js';
import { readLogs } from '../../src/engine/store/logs.js';
import { listTaskInstances, listTries } from '../../src/engine/store/task-instances.js';
import { GpuAllocator } from '../../src/engine/worker/gpus.js';
import {
  insertDag,
  insertDagFile,
  startEngine,
  startRun,
  waitForRun,
  writeDagFile,
  type EngineHarness,
} from '../helpers/engine.js';

describe('GPUs for bash and node tasks (worker --gpus 0,1)', function () {
  this.timeout(60_000);
  let engine: EngineHarness;

  before(async () => {
    // What `worker --gpus 0,1` builds (nvidia-smi is absent here: the devices are only declared).
    const gpus = await GpuAllocator.fromSpec('0,1');
    engine = await startEngine({ worker: { gpus, concurrency: 6 } });
  });
  after(async () => {
    await engine?.stop();
  });

  it('lends each bash task its own devices, seen in its environment, never two tasks on one', async () => {
    const ledger = path.join(engine.folder, 'gpu-ledger.txt');
    const d = dag('gpu_bash');
    // Appends "start|end <task> <ns> <devices>" lines, so overlaps can be checked afterwards.
    const step = (what: string) =>
      `echo "${what} {{ task_id }} $(date +%s%N) $CUDA_VISIBLE_DEVICES" >> ${JSON.stringify(ledger)}`;
    const command = [
      step('start'),
      'sleep 0.4',
      step('end'),
      'echo "$CUDA_VISIBLE_DEVICES|$NVIDIA_VISIBLE_DEVICES|$AIRTASKS_GPUS|$CUDA_DEVICE_ORDER"',
    ].join('; ');
    for (const i of [1, 2, 3, 4]) d.bash(`one_${i}`, { command, gpus: 1 });
    d.bash('both', { command, gpus: 2 });
    d.bash('second', { command, gpus: ['1'] });
    // A task's own env cannot widen what it sees.
    d.bash('greedy', { command, gpus: 1, env: { CUDA_VISIBLE_DEVICES: '0,1' } });
    d.bash('no_gpus', { command: 'echo "[${CUDA_VISIBLE_DEVICES-unset}]"' });
    const runId = await startRun(engine.db, await insertDag(engine.db, d));
    const run = await waitForRun(engine.db, runId, 30_000);
    const tis = new Map((await listTaskInstances(engine.db, runId)).map((t) => [t.task_id, t]));
    expect(run.state, [...tis.values()].map((t) => `${t.task_id}: ${t.error}`).join('; ')).to.equal(
      'success',
    );

    const seen = new Map<string, string[]>();
    for (const [taskId, t] of tis) {
      if (taskId === 'no_gpus') continue;
      const [cuda, nvidia, airtasks, order] = String(t.output).split('|');
      expect(nvidia, taskId).to.equal(cuda);
      expect(airtasks, taskId).to.equal(cuda);
      expect(order, taskId).to.equal('PCI_BUS_ID');
      seen.set(taskId, cuda!.split(','));
    }
    for (const i of [1, 2, 3, 4]) expect(seen.get(`one_${i}`)).to.have.length(1);
    expect(seen.get('greedy')).to.have.length(1);
    expect(seen.get('both')).to.deep.equal(['0', '1']);
    expect(seen.get('second')).to.deep.equal(['1']);
    for (const ids of seen.values()) for (const id of ids) expect(['0', '1']).to.include(id);
    // A task that asks for none keeps the worker's environment.
    expect(tis.get('no_gpus')!.output).to.equal('[unset]');
    expect((await readLogs(engine.db, runId, 'both')).map((l) => l.line)).to.include('GPUs assigned: 0, 1');

    // Replay the ledger: a device is never taken while another task holds it; tasks did overlap.
    const events = (await readFile(ledger, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([what, task, ns, ids]) => ({ what, task: task!, ns: BigInt(ns!), ids: ids!.split(',') }))
      .sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : a.what === 'end' ? -1 : 1));
    expect(events).to.have.length(14);
    const held = new Map<string, string>();
    let running = 0;
    let maxRunning = 0;
    for (const e of events) {
      if (e.what === 'start') {
        for (const id of e.ids) {
          expect(held.get(id), `${e.task} took GPU ${id} while ${held.get(id)} held it`).to.equal(undefined);
          held.set(id, e.task);
        }
        maxRunning = Math.max(maxRunning, ++running);
      } else {
        for (const id of e.ids) held.delete(id);
        running--;
      }
    }
    expect(maxRunning, 'two tasks ran at once, each on its own device').to.equal(2);
  });

  it('fails a request the worker cannot meet at once, with the docker path message', async () => {
    const d = dag('gpu_too_many');
    d.bash('three', { command: 'echo never', gpus: 3, retries: 2, retryDelay: '50ms' });
    d.bash('unknown', { command: 'echo never', gpus: ['7'] });
    const runId = await startRun(engine.db, await insertDag(engine.db, d));
    expect((await waitForRun(engine.db, runId)).state).to.equal('failed');
    const tis = new Map((await listTaskInstances(engine.db, runId)).map((t) => [t.task_id, t]));
    const three = tis.get('three')!;
    expect(three.state).to.equal('failed');
    expect(three.error).to.equal(
      'the task asks for 3 GPU(s) but this worker has 2 (0, 1): ask for fewer, or run it on a worker with more GPUs',
    );
    expect((await listTries(engine.db, runId, 'three')).map((t) => t.error)).to.deep.equal([
      three.error,
      three.error,
      three.error,
    ]);
    expect(tis.get('unknown')!.error).to.equal(
      'the task asks for GPU(s) 7 but this worker has 2 (0, 1): ask for fewer, or run it on a worker with more GPUs',
    );
    // Nothing ran: no command line in the log.
    expect((await readLogs(engine.db, runId, 'three')).map((l) => l.line).join('\n')).to.not.include(
      '$ echo',
    );
  });

  it('gives a node task its devices and the environment for its child processes', async () => {
    // Node tasks load their function from the DAG file, as in a worker.
    await writeDagFile(
      engine.folder,
      'gpu_node.ts',
      `
const d = dag('gpu_node');
d.node('train', {
  gpus: ['0'],
  run: (ctx) => ({ gpus: ctx.gpus, env: ctx.env.CUDA_VISIBLE_DEVICES, order: ctx.env.CUDA_DEVICE_ORDER }),
});
d.node('plain', { run: (ctx) => ({ gpus: ctx.gpus, env: ctx.env.CUDA_VISIBLE_DEVICES ?? null }) });
export default d;
`,
    );
    const d = (await insertDagFile(engine.db, engine.folder, 'gpu_node.ts')).get('gpu_node')!;
    const runId = await startRun(engine.db, d);
    expect((await waitForRun(engine.db, runId)).state).to.equal('success');
    const tis = new Map((await listTaskInstances(engine.db, runId)).map((t) => [t.task_id, t]));
    expect(tis.get('train')!.output).to.deep.equal({ gpus: ['0'], env: '0', order: 'PCI_BUS_ID' });
    expect(tis.get('plain')!.output).to.deep.equal({ gpus: null, env: null });
  });
});
