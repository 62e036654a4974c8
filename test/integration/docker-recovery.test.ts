/**
 * A worker that dies leaves its task's container running on the host's engine. The next try must not run
 * the task a second time blindly: it finds the container by its labels and takes its result.
 */
import { expect } from 'chai';
import type Docker from 'dockerode';
import { findTaskContainers, taskLabels } from '../../src/docker/containers.js';
import { dockerOperator } from '../../src/engine/operators/docker.js';
import { TaskFailure } from '../../src/engine/operators/types.js';
import { dockerContext, ensureBaseImage, removeRunContainers, requireDocker } from '../helpers/docker.js';

describe('docker operator: recovery of a lost try (real engine)', function () {
  this.timeout(60_000);
  let d: Docker;
  let image: string;
  const runs: string[] = [];

  before(async function () {
    d = await requireDocker(this);
    image = await ensureBaseImage(d);
  });
  after(async () => {
    if (d) await removeRunContainers(d, runs);
  });

  /** What a lost worker leaves behind: the container of try 1, started, labelled, not removed. */
  async function orphan(t: ReturnType<typeof dockerContext>, script: string) {
    runs.push(t.runId);
    const c = await d.createContainer({
      Image: image,
      Cmd: ['sh', '-c', script],
      Labels: taskLabels({ ...t.ctx.run, tryNumber: 1 }),
    });
    await c.start();
    return c;
  }

  it('follows a still-running container of an earlier try to its end instead of starting a new one', async () => {
    const t = dockerContext({
      image: 'ignored-never-pulled:1',
      pullPolicy: 'never',
      command: 'echo second run',
    });
    await orphan(t, 'echo from-the-first-try; sleep 2; echo finished-by-orphan');
    t.ctx.run.tryNumber = 2;
    const r = await dockerOperator.execute(t.ctx);
    expect(r.output).to.equal('finished-by-orphan');
    expect(t.sink.of('stdout')).to.deep.equal(['from-the-first-try', 'finished-by-orphan']);
    expect(t.sink.of('system').join('\n')).to.match(/of try 1 is running \(its worker was lost\)/);
    expect(t.sink.of('stdout')).to.not.include('second run');
    expect(await findTaskContainers(d, { runId: t.runId })).to.have.length(0); // adopted, then removed
  });

  it('takes the exit code of an earlier try whose container already ended', async () => {
    const t = dockerContext({
      image: 'ignored-never-pulled:1',
      pullPolicy: 'never',
      command: 'echo second run',
    });
    const c = await orphan(t, 'echo partial work; exit 3');
    await c.wait();
    t.ctx.run.tryNumber = 2;
    let failure: unknown;
    await dockerOperator.execute(t.ctx).catch((e) => (failure = e));
    expect(failure).to.be.instanceOf(TaskFailure);
    expect((failure as TaskFailure).exitCode).to.equal(3);
    expect(t.sink.of('stdout')).to.deep.equal(['partial work']);
    expect(t.sink.of('system').join('\n')).to.match(/of try 1 is exited/);
  });

  it('starts a fresh container when no earlier try left one', async () => {
    const t = dockerContext({ image, command: 'echo fresh' });
    runs.push(t.runId);
    t.ctx.run.tryNumber = 2;
    const r = await dockerOperator.execute(t.ctx);
    expect(r.output).to.equal('fresh');
    expect(t.sink.of('system').join('\n')).to.not.match(/worker was lost/);
  });
});
