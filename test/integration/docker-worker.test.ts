/**
 * Docker tasks through the real scheduler and worker (Postgres queue broker): the worker's LogSink
 * stores the container's lines, variables come from the store, a timeout stops the container.
 */
import { expect } from 'chai';
import type Docker from 'dockerode';
import { findTaskContainers } from '../../src/docker/containers.js';
import type { Broker } from '../../src/engine/broker/broker.js';
import { PgQueueBroker } from '../../src/engine/broker/pg-queue.js';
import { dag } from '../../src/engine/dag/builder.js';
import { Scheduler } from '../../src/engine/scheduler/scheduler.js';
import { readLogs } from '../../src/engine/store/logs.js';
import { listTaskInstances } from '../../src/engine/store/task-instances.js';
import { setVariable } from '../../src/engine/store/variables.js';
import { Worker } from '../../src/engine/worker/worker.js';
import { BASE_IMAGE, ensureBaseImage, removeRunContainers, requireDocker } from '../helpers/docker.js';
import { insertDag, removeDir, startRun, tempDir, waitForRun } from '../helpers/engine.js';
import { freshDb, requireService } from '../helpers/env.js';

type TestDb = Awaited<ReturnType<typeof freshDb>>;

describe('docker tasks through the scheduler and a worker', function () {
  this.timeout(60_000);
  let d: Docker;
  let db: TestDb;
  let broker: Broker;
  let scheduler: Scheduler;
  let worker: Worker;
  let folder: string;
  const runs: string[] = [];

  before(async function () {
    this.timeout(120_000);
    await requireService(this, 'postgres');
    d = await requireDocker(this);
    await ensureBaseImage(d);
    db = await freshDb();
    folder = await tempDir('airtasks-docker-worker-');
    broker = new PgQueueBroker(db, { pollMs: 200 });
    scheduler = new Scheduler({
      db,
      broker,
      dagsFolder: null,
      sweepIntervalMs: 500,
      zombieThresholdMs: 5000,
    });
    worker = new Worker({
      db,
      broker,
      queues: ['worker'],
      concurrency: 2,
      dagsFolder: folder,
      heartbeatMs: 200,
    });
    await scheduler.start();
    await worker.start();
  });

  after(async function () {
    await worker?.stop();
    await scheduler?.stop();
    await broker?.close();
    await db?.drop();
    await removeDir(folder);
    if (d) await removeRunContainers(d, runs);
  });

  it('runs a docker task between bash tasks, with a secret variable as a file, masked in stored logs and outputs', async function () {
    await setVariable(db, 'docker_test_secret', 'the-secret-value-42', { secret: true });
    const g = dag('docker_pipeline');
    const name = g.bash('name', { command: 'echo container-world' });
    const box = g.docker('box', {
      upstream: name,
      image: BASE_IMAGE,
      pullPolicy: 'never',
      networkMode: 'host',
      variables: ['docker_test_secret'],
      command: 'echo "hello {{ outputs.name }}"; cat /run/variables/docker_test_secret; echo; echo done >&2',
      output: 'all',
    });
    g.bash('after', { upstream: box, command: 'echo "got: {{ outputs.box | replace("\\n", "|") }}"' });
    const runId = await startRun(db, await insertDag(db, g));
    runs.push(runId);
    const run = await waitForRun(db, runId, 45_000);
    expect(run.state).to.equal('success');
    const tis = new Map((await listTaskInstances(db, runId)).map((t) => [t.task_id, t]));
    expect(tis.get('box')).to.include({ state: 'success', exit_code: 0 });
    // The output holds the secret the container printed: it is stored masked, and passed on masked.
    expect(tis.get('box')!.output).to.equal('hello container-world\n***');
    expect(tis.get('after')!.output).to.equal('got: hello container-world|***');
    const logs = await readLogs(db, runId, 'box');
    const lines = (s: string) => logs.filter((l) => l.stream === s).map((l) => l.line);
    expect(lines('stdout')).to.deep.equal(['hello container-world', '***']);
    expect(lines('stderr')).to.deep.equal(['done']);
    expect(lines('system').some((l) => /^container \w{12} removed$/.test(l))).to.equal(true);
    expect(await findTaskContainers(d, { runId })).to.have.length(0);
  });

  it('fails the task on a timeout and stops and removes its container', async function () {
    const g = dag('docker_timeout');
    g.docker('slow', {
      image: BASE_IMAGE,
      pullPolicy: 'never',
      networkMode: 'host',
      command: 'echo sleeping; sleep 60',
      timeout: '2s',
    });
    const runId = await startRun(db, await insertDag(db, g));
    runs.push(runId);
    const run = await waitForRun(db, runId, 30_000);
    expect(run.state).to.equal('failed');
    const [ti] = await listTaskInstances(db, runId);
    expect(ti).to.include({ state: 'failed' });
    expect(ti!.error).to.equal('stopped: timed out after 2000 ms');
    expect(await findTaskContainers(d, { runId })).to.have.length(0);
  });

  it('fails a task whose variable is missing without creating a container', async function () {
    const g = dag('docker_missing_variable');
    g.docker('needs_var', { image: BASE_IMAGE, pullPolicy: 'never', variables: ['docker_test_absent'] });
    const runId = await startRun(db, await insertDag(db, g));
    runs.push(runId);
    const run = await waitForRun(db, runId, 30_000);
    expect(run.state).to.equal('failed');
    const [ti] = await listTaskInstances(db, runId);
    expect(ti!.error).to.equal(
      'variable "docker_test_absent" does not exist: set it with `airtasks variables set`',
    );
    expect(await findTaskContainers(d, { runId })).to.have.length(0);
  });
});
