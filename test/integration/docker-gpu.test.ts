import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type Docker from 'dockerode';
import { ValidationError } from '../../src/core/errors.js';
import { findTaskContainer, findTaskContainers } from '../../src/docker/containers.js';
import { dockerOperator } from '../../src/engine/operators/docker.js';
import {
  detectGpus,
  GpuAllocator,
  GpuRequestError,
  parseGpuSpec,
  parseNvidiaSmi,
  parseNvidiaSmiInfo,
  type GpuLease,
} from '../../src/engine/worker/gpus.js';
import {
  BASE_IMAGE,
  dockerContext,
  ensureBaseImage,
  removeRunContainers,
  requireDocker,
  sleep,
  type TestContext,
} from '../helpers/docker.js';
import { fails } from '../helpers/operators.js';

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

/** Resolves to 'pending' when the promise has not settled within a few ticks. */
async function state<T>(p: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([p, sleep(30).then(() => 'pending' as const)]);
}

describe('GPU allocator', function () {
  it('parses --gpus: ids, all / unset (detect), none', function () {
    expect(parseGpuSpec('0,1')).to.deep.equal(['0', '1']);
    expect(parseGpuSpec(' 2 , 3 ')).to.deep.equal(['2', '3']);
    expect(parseGpuSpec('GPU-6f2c1a3e-1111-2222-3333-444455556666')).to.deep.equal([
      'GPU-6f2c1a3e-1111-2222-3333-444455556666',
    ]);
    expect(parseGpuSpec(undefined)).to.equal('detect');
    expect(parseGpuSpec('all')).to.equal('detect');
    expect(parseGpuSpec('none')).to.deep.equal([]);
    expect(parseGpuSpec('')).to.deep.equal([]);
    expect(() => parseGpuSpec('0,gpu1')).to.throw(ValidationError, /invalid GPU id "gpu1" in gpus/);
    expect(() => parseGpuSpec('bogus'))
      .to.throw(ValidationError)
      .with.property('field', 'gpus');
    expect(() => parseGpuSpec('1,1')).to.throw(ValidationError, /listed twice/);
    expect(() => new GpuAllocator(['0', '0'])).to.throw(/listed twice/);
  });

  describe('detection with nvidia-smi', function () {
    let dir: string;
    before(async function () {
      dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-smi-'));
      await writeFile(
        path.join(dir, 'nvidia-smi'),
        '#!/bin/sh\n[ "$1" = "--query-gpu=index,name,memory.total" ] || exit 9\n' +
          'echo "0, NVIDIA H100 80GB HBM3, 81559 MiB"\necho "1, NVIDIA H100 80GB HBM3, 81559 MiB"\n',
      );
      await chmod(path.join(dir, 'nvidia-smi'), 0o755);
      await writeFile(path.join(dir, 'failing-smi'), '#!/bin/sh\necho "NVIDIA-SMI has failed" >&2\nexit 9\n');
      await chmod(path.join(dir, 'failing-smi'), 0o755);
    });
    after(async function () {
      await rm(dir, { recursive: true, force: true });
    });

    it('lists the GPUs nvidia-smi reports, by index', async function () {
      expect(await detectGpus({ command: path.join(dir, 'nvidia-smi') })).to.deep.equal(['0', '1']);
      const a = await GpuAllocator.fromSpec(undefined, { command: path.join(dir, 'nvidia-smi') });
      expect(a.devices).to.deep.equal(['0', '1']);
      const explicit = await GpuAllocator.fromSpec('1', { command: path.join(dir, 'nvidia-smi') });
      expect(explicit.devices).to.deep.equal(['1']);
      // What the worker reports: model and memory as nvidia-smi tells them.
      expect(explicit.info).to.deep.equal([{ id: '1', model: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559 }]);
      expect(a.info.map((g) => g.model)).to.deep.equal(['NVIDIA H100 80GB HBM3', 'NVIDIA H100 80GB HBM3']);
    });

    it('reads model names with commas, and unknown memory', function () {
      expect(parseNvidiaSmiInfo('0, Tesla T4, 15360 MiB\n1, Odd, Name, [N/A]\n\n')).to.deep.equal([
        { id: '0', model: 'Tesla T4', memoryMiB: 15360 },
        { id: '1', model: 'Odd, Name', memoryMiB: null },
      ]);
    });

    it('declares devices without nvidia-smi: model and memory unknown', async function () {
      const declared = await GpuAllocator.fromSpec('0,1', { command: path.join(dir, 'not-there') });
      expect(declared.info).to.deep.equal([
        { id: '0', model: null, memoryMiB: null },
        { id: '1', model: null, memoryMiB: null },
      ]);
    });

    it('finds none when nvidia-smi is absent or fails', async function () {
      expect(await detectGpus({ command: path.join(dir, 'not-there') })).to.deep.equal([]);
      expect(await detectGpus({ command: path.join(dir, 'failing-smi') })).to.deep.equal([]);
      expect(parseNvidiaSmi('No devices were found\n')).to.deep.equal([]);
    });
  });

  it('hands out distinct devices and waits when all are busy', async function () {
    const a = new GpuAllocator(['0', '1']);
    const first = await a.acquire(1);
    const second = await a.acquire(1);
    expect([...first.ids, ...second.ids].sort()).to.deep.equal(['0', '1']);
    const third = a.acquire(1);
    expect(await state(third)).to.equal('pending');
    second.release();
    second.release(); // twice is harmless
    expect((await third).ids).to.deep.equal(second.ids);
    expect(a.free).to.deep.equal([]);
    first.release();
    (await third).release();
    expect(a.free).to.deep.equal(['0', '1']);
  });

  it('fails at once when a request exceeds what the worker has', async function () {
    const a = new GpuAllocator(['0', '1']);
    const held = await a.acquire('all'); // busy devices do not change the answer
    const err = await rejects(a.acquire(3));
    expect(err).to.be.instanceOf(GpuRequestError);
    expect(err.message).to.equal(
      'the task asks for 3 GPU(s) but this worker has 2 (0, 1): ask for fewer, or run it on a worker with more GPUs',
    );
    expect((await rejects(a.acquire(['2']))).message).to.match(
      /asks for GPU\(s\) 2 but this worker has 2 \(0, 1\)/,
    );
    const none = new GpuAllocator([]);
    expect((await rejects(none.acquire('all'))).message).to.equal(
      'the task asks for all GPUs but this worker has none: run it on a worker with GPUs ' +
        '(start the worker with --gpus, or where nvidia-smi lists the GPUs)',
    );
    expect((await rejects(none.acquire(1))).message).to.match(/asks for 1 GPU\(s\) but this worker has none/);
    expect((await rejects(a.acquire(-1))).message).to.match(/whole number/);
    expect((await none.acquire(0)).ids).to.deep.equal([]);
    held.release();
  });

  it('serves requests in arrival order, so a large request is not starved', async function () {
    const a = new GpuAllocator(['0', '1']);
    const one = await a.acquire(['0']);
    const both = a.acquire(2);
    const later = a.acquire(1); // device 1 is free, but the request for both came first
    expect(await state(both)).to.equal('pending');
    expect(await state(later)).to.equal('pending');
    one.release();
    const b = await both;
    expect(b.ids).to.deep.equal(['0', '1']);
    expect(await state(later)).to.equal('pending');
    b.release();
    expect((await later).ids).to.have.length(1);
  });

  it('gives up waiting when the task is stopped, and the queue moves on', async function () {
    const a = new GpuAllocator(['0']);
    const held = await a.acquire(1);
    const abort = new AbortController();
    const waiting = a.acquire(1, { signal: abort.signal });
    const after = a.acquire(1);
    abort.abort('cancelled');
    expect((await rejects(waiting)).message).to.equal('stopped while waiting for GPUs: cancelled');
    held.release();
    expect((await after).ids).to.deep.equal(['0']);
  });
});

describe('docker operator: GPU requests (real engine)', function () {
  this.timeout(60_000);
  let d: Docker;
  let hasNvidiaRuntime = false;
  const runs: string[] = [];
  const context = (args: Record<string, unknown>, gpus?: GpuAllocator): TestContext => {
    const t = dockerContext(
      { image: BASE_IMAGE, command: 'echo no gpu needed', keepContainer: true, ...args },
      { gpus },
    );
    runs.push(t.runId);
    return t;
  };
  const hostConfigOf = async (t: TestContext) => {
    const info = await findTaskContainer(d, { runId: t.runId, taskId: 'dock', tryNumber: 1 });
    expect(info, 'the container was created').to.not.equal(undefined);
    const host = (await d.getContainer(info!.Id).inspect()).HostConfig;
    // Only what the operator sends: engines differ in how they echo the rest (Options: null or {}).
    const requests = host.DeviceRequests?.map(({ Driver, Count, DeviceIDs, Capabilities }) => ({
      Driver,
      Count,
      DeviceIDs,
      Capabilities,
    }));
    return { ...host, DeviceRequests: requests };
  };

  before(async function () {
    this.timeout(120_000);
    d = await requireDocker(this);
    await ensureBaseImage(d);
    const info = (await d.info()) as { Runtimes?: Record<string, unknown> };
    hasNvidiaRuntime = Object.keys(info.Runtimes ?? {}).includes('nvidia');
  });

  after(async function () {
    if (d) await removeRunContainers(d, runs);
  });

  it('sends a DeviceRequest for a count, and reports the engine error as it is without a GPU', async function () {
    const t = context({ gpus: 2 });
    const result = dockerOperator.execute(t.ctx);
    if (hasNvidiaRuntime) {
      await result.catch(() => undefined);
    } else {
      const err = await fails(result);
      expect(err.message).to.match(
        /^starting container \w{12} failed: could not select device driver "nvidia"/,
      );
      const engineLine = t.sink.of('system').find((l) => l.startsWith('docker engine: '));
      expect(engineLine).to.equal(
        'docker engine: could not select device driver "nvidia" with capabilities: [[gpu]]',
      );
    }
    expect((await hostConfigOf(t)).DeviceRequests).to.deep.equal([
      { Driver: 'nvidia', Count: 2, DeviceIDs: null, Capabilities: [['gpu']] },
    ]);
  });

  it("sends Count -1 for 'all' and DeviceIDs for a list", async function () {
    const all = context({ gpus: 'all' });
    await dockerOperator.execute(all.ctx).catch(() => undefined);
    expect((await hostConfigOf(all)).DeviceRequests).to.deep.equal([
      { Driver: 'nvidia', Count: -1, DeviceIDs: null, Capabilities: [['gpu']] },
    ]);
    const list = context({ gpus: ['1', '3'] });
    await dockerOperator.execute(list.ctx).catch(() => undefined);
    expect((await hostConfigOf(list)).DeviceRequests).to.deep.equal([
      { Driver: 'nvidia', Count: 0, DeviceIDs: ['1', '3'], Capabilities: [['gpu']] },
    ]);
  });

  it("gives concurrent tasks distinct devices from the worker's allocator and releases them", async function () {
    const gpus = new GpuAllocator(['0', '1']);
    const a = context({ gpus: 1 }, gpus);
    const b = context({ gpus: 1 }, gpus);
    await Promise.all(
      [dockerOperator.execute(a.ctx), dockerOperator.execute(b.ctx)].map((p) => p.catch(() => undefined)),
    );
    const ids = [...(await hostConfigOf(a)).DeviceRequests!, ...(await hostConfigOf(b)).DeviceRequests!].map(
      (r) => r.DeviceIDs,
    );
    expect(ids.flat().sort()).to.deep.equal(['0', '1']);
    expect(a.sink.of('system').some((l) => /^GPUs assigned: [01]$/.test(l))).to.equal(true);
    expect(gpus.free, 'released after the tasks ended').to.deep.equal(['0', '1']);
  });

  it('waits for a busy GPU, then runs', async function () {
    const gpus = new GpuAllocator(['0']);
    const held: GpuLease = await gpus.acquire(1);
    const t = context({ gpus: 1 }, gpus);
    const p = dockerOperator.execute(t.ctx).catch(() => undefined);
    await sleep(300);
    expect(t.sink.of('system')).to.include('waiting for GPUs (1): 0 of 1 free now');
    expect(await findTaskContainers(d, { runId: t.runId })).to.have.length(0);
    held.release();
    await p;
    expect((await hostConfigOf(t)).DeviceRequests?.[0]?.DeviceIDs).to.deep.equal(['0']);
  });

  it('fails at once, before any container or pull, when the task asks for more GPUs than the worker has', async function () {
    const t = context(
      { gpus: 2, image: 'airtasks-test/not-pulled:never', pullPolicy: 'never' },
      new GpuAllocator(['0']),
    );
    const err = await fails(dockerOperator.execute(t.ctx));
    expect(err.message).to.equal(
      'the task asks for 2 GPU(s) but this worker has 1 (0): ask for fewer, or run it on a worker with more GPUs',
    );
    expect(await findTaskContainers(d, { runId: t.runId })).to.have.length(0);
    const none = context({ gpus: 'all' }, new GpuAllocator([]));
    expect((await fails(dockerOperator.execute(none.ctx))).message).to.match(
      /asks for all GPUs but this worker has none/,
    );
  });

  it('asks for the nvidia runtime, and reports the engine error as it is without it', async function () {
    if (hasNvidiaRuntime) this.skip();
    for (const args of [{ runtime: 'nvidia' }, { hostConfig: { Runtime: 'nvidia' } }]) {
      const t = context(args);
      const err = await fails(dockerOperator.execute(t.ctx));
      expect(err.message).to.equal('creating the container failed: Unknown runtime specified nvidia');
      expect(t.sink.of('system')).to.include('docker engine: Unknown runtime specified nvidia');
    }
  });

  it('with the nvidia runtime and no gpus, holds all of the worker GPUs', async function () {
    const gpus = new GpuAllocator(['0', '1']);
    const t = context({ runtime: 'nvidia' }, gpus);
    await dockerOperator.execute(t.ctx).catch(() => undefined);
    expect(t.sink.of('system')).to.include('GPUs assigned: 0, 1');
    expect(gpus.free).to.deep.equal(['0', '1']);
  });
});
