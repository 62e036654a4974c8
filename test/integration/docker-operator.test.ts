import { expect } from 'chai';
import type Docker from 'dockerode';
import { findTaskContainer, findTaskContainers, LABEL } from '../../src/docker/containers.js';
import { dag } from '../../src/engine/dag/builder.js';
import { DagValidationError } from '../../src/engine/dag/validate.js';
import { dockerOperator } from '../../src/engine/operators/docker.js';
import { getOperator } from '../../src/engine/operators/registry.js';
import {
  BASE_IMAGE,
  buildImage,
  dockerContext,
  ensureBaseImage,
  removeRunContainers,
  requireDocker,
  until,
  type TestContext,
} from '../helpers/docker.js';
import { fails } from '../helpers/operators.js';

const DEFAULT_CMD_IMAGE = 'airtasks-test/default-cmd:local';

describe('d.docker (authoring)', function () {
  it('keeps the operator arguments in args and the task options on the task', function () {
    const g = dag('docker_authoring');
    const t = g.docker('box', {
      image: 'app:1',
      command: ['run', '{{ ds }}'],
      gpus: 'all',
      variables: { token: '/etc/token' },
      pullPolicy: 'never',
      hostConfig: { ShmSize: 1024 },
      retries: 2,
      timeout: '10m',
      queue: 'gpu',
    });
    const [task] = g.serialize().tasks;
    expect(task).to.include({
      taskId: 'box',
      operator: 'docker',
      queue: 'gpu',
      retries: 2,
      timeoutMs: 600_000,
    });
    expect(task!.args).to.deep.equal({
      image: 'app:1',
      command: ['run', '{{ ds }}'],
      gpus: 'all',
      variables: { token: '/etc/token' },
      pullPolicy: 'never',
      hostConfig: { ShmSize: 1024 },
    });
    expect(t.id).to.equal('box');
  });

  it('refuses a task without an image', function () {
    expect(() => dag('docker_no_image').docker('box', { image: ' ' })).to.throw(
      DagValidationError,
      /docker needs an image/,
    );
  });
});

describe('docker operator (real engine)', function () {
  this.timeout(60_000);
  let d: Docker;
  const runs: string[] = [];
  const context = (
    args: Record<string, unknown>,
    opts?: Parameters<typeof dockerContext>[1],
  ): TestContext => {
    const t = dockerContext({ networkMode: 'host', ...args }, opts);
    runs.push(t.runId);
    return t;
  };

  before(async function () {
    this.timeout(120_000);
    d = await requireDocker(this);
    await ensureBaseImage(d);
    await buildImage(d, DEFAULT_CMD_IMAGE, `FROM ${BASE_IMAGE}\nCMD ["echo", "image default command"]\n`);
  });

  after(async function () {
    if (d) await removeRunContainers(d, runs);
  });

  it('is registered as "docker"', function () {
    expect(getOperator('docker')).to.equal(dockerOperator);
  });

  it('runs a string command with /bin/sh -c and returns the last stdout line', async function () {
    const t = context({ image: BASE_IMAGE, command: 'echo one; echo two >&2; echo three; echo' });
    const r = await dockerOperator.execute(t.ctx);
    expect(r).to.deep.equal({ output: 'three', exitCode: 0 });
    expect(t.sink.of('stdout')).to.deep.equal(['one', 'three', '']);
    expect(t.sink.of('stderr')).to.deep.equal(['two']);
  });

  it('passes template values to the container shell as data, never as code (hostile conf)', async function () {
    const hostile = [
      '$(echo x > /tmp/airtasks/m1)',
      "'; echo x > /tmp/airtasks/m2; '",
      '`touch /tmp/airtasks/m3`',
    ];
    for (const v of hostile) {
      const t = context(
        {
          image: BASE_IMAGE,
          command:
            'echo "{{ conf.v }}"; echo {{ conf.v }}; echo \'{{ conf.v }}\'; eval "echo {{ conf.v }}"; ls /tmp/airtasks | wc -l',
        },
        { conf: { v } },
      );
      const r = await dockerOperator.execute(t.ctx);
      expect(t.sink.of('stdout').slice(0, 4)).to.deep.equal([v, v, v, v]);
      expect(r.output, 'files created in the scratch dir').to.equal('0');
    }
  });

  it('hands a conf and a value too large for the environment over as files', async function () {
    const big = 'B'.repeat(200_000);
    const t = context(
      {
        image: BASE_IMAGE,
        command:
          'printf %s "{{ conf.big }}" | wc -c; test -z "${AIRTASKS_CONF:-}" && wc -c < "$AIRTASKS_CONF_FILE"',
      },
      { conf: { big } },
    );
    const r = await dockerOperator.execute(t.ctx);
    expect(t.sink.of('stdout').map((l) => l.trim())).to.deep.equal([
      '200000',
      String(JSON.stringify({ big }).length),
    ]);
    expect(r.exitCode).to.equal(0);
  });

  it('runs an array command as the exact argv, templated', async function () {
    const t = context(
      { image: BASE_IMAGE, command: ['echo', 'run {{ run_id }} on {{ ds }}', '$HOME'] },
      { conf: {} },
    );
    const r = await dockerOperator.execute(t.ctx);
    expect(r.output).to.equal(`run ${t.runId} on 2026-01-02 $HOME`);
  });

  it("uses the image's default command when none is given", async function () {
    const t = context({ image: DEFAULT_CMD_IMAGE });
    expect((await dockerOperator.execute(t.ctx)).output).to.equal('image default command');
  });

  it('lets createOptions override the command (merged last)', async function () {
    const t = context({
      image: BASE_IMAGE,
      command: 'echo from command',
      createOptions: { Cmd: ['echo', 'from createOptions'] },
    });
    expect((await dockerOperator.execute(t.ctx)).output).to.equal('from createOptions');
  });

  it('returns all of stdout with output: all, and null with output: none', async function () {
    const all = context({ image: BASE_IMAGE, command: 'printf "a\\nb\\n\\nc\\n"', output: 'all' });
    expect((await dockerOperator.execute(all.ctx)).output).to.equal('a\nb\n\nc');
    const none = context({ image: BASE_IMAGE, command: 'echo x', output: 'none' });
    expect((await dockerOperator.execute(none.ctx)).output).to.equal(null);
  });

  it('streams log lines into the task log while the container runs', async function () {
    const t = context({ image: BASE_IMAGE, command: 'echo first; sleep 3; echo second' });
    let finished = 0;
    const p = dockerOperator.execute(t.ctx).finally(() => (finished = Date.now()));
    await until(() => t.sink.of('stdout').includes('first'), 15_000, 'the first line');
    const firstAt = t.sink.lines.find((l) => l.line === 'first')!.at;
    expect(finished, 'the first line arrived before the task ended').to.equal(0);
    const r = await p;
    expect(r.output).to.equal('second');
    expect(finished - firstAt).to.be.greaterThan(1500);
  });

  it('fails with the exit code and removes the container', async function () {
    const t = context({ image: BASE_IMAGE, command: 'echo about to fail; exit 3' });
    const err = await fails(dockerOperator.execute(t.ctx));
    expect(err.exitCode).to.equal(3);
    expect(err.message).to.match(/exited with code 3/);
    expect(t.sink.of('stdout')).to.deep.equal(['about to fail']);
    expect(await findTaskContainers(d, { runId: t.runId })).to.have.length(0);
    expect(t.sink.of('system').some((l) => /container \w{12} removed/.test(l))).to.equal(true);
  });

  it('removes the container after success, and keeps it with keepContainer', async function () {
    const removed = context({ image: BASE_IMAGE, command: 'true' });
    await dockerOperator.execute(removed.ctx);
    expect(await findTaskContainers(d, { runId: removed.runId })).to.have.length(0);

    const kept = context({ image: BASE_IMAGE, command: 'echo kept; exit 0', keepContainer: true });
    await dockerOperator.execute(kept.ctx);
    const info = await findTaskContainer(d, { runId: kept.runId, taskId: 'dock', tryNumber: 1 });
    expect(info, 'kept container').to.not.equal(undefined);
    expect(info!.State).to.equal('exited');
    const logs = (await d.getContainer(info!.Id).logs({ stdout: true })).toString();
    expect(logs).to.contain('kept');
  });

  it('labels the container with dag, run, task and try, and findTaskContainer finds it', async function () {
    const t = context({
      image: BASE_IMAGE,
      command: 'true',
      keepContainer: true,
      labels: { team: 'data', [LABEL.runId]: 'spoofed' },
    });
    await dockerOperator.execute(t.ctx);
    const info = await findTaskContainer(d, { runId: t.runId, taskId: 'dock', tryNumber: 1 });
    expect(info?.Labels).to.include({
      'airtasks.dag_id': 'docker_test',
      'airtasks.run_id': t.runId,
      'airtasks.task_id': 'dock',
      'airtasks.try': '1',
      team: 'data',
    });
    expect(await findTaskContainer(d, { runId: t.runId, taskId: 'dock', tryNumber: 2 })).to.equal(undefined);
    expect(await findTaskContainer(d, { runId: t.runId, taskId: 'other', tryNumber: 1 })).to.equal(undefined);
  });

  it('applies env, resources, user, working dir, network, binds and the escape hatches', async function () {
    const t = context({
      image: BASE_IMAGE,
      command: 'echo "$GREETING $(id -u) $(pwd)"; test -d /data',
      env: { GREETING: 'hello {{ task_id }}' },
      cpus: 0.5,
      memory: '64m',
      shmSize: '32m',
      user: '65534',
      workingDir: '/tmp',
      networkMode: 'none',
      binds: ['airtasks-test-volume:/data'],
      hostConfig: { ShmSize: 16 * 1024 * 1024, AutoRemove: true },
      keepContainer: true,
    });
    const r = await dockerOperator.execute(t.ctx);
    expect(r.output).to.equal('hello dock 65534 /tmp');
    const info = await findTaskContainer(d, { runId: t.runId, taskId: 'dock', tryNumber: 1 });
    const c = await d.getContainer(info!.Id).inspect();
    expect(c.HostConfig.NanoCpus).to.equal(500_000_000);
    expect(c.HostConfig.Memory).to.equal(64 * 1024 * 1024);
    expect(c.HostConfig.ShmSize, 'hostConfig wins over shmSize').to.equal(16 * 1024 * 1024);
    expect(c.HostConfig.AutoRemove, 'auto-remove is refused').to.equal(false);
    expect(c.HostConfig.NetworkMode).to.equal('none');
    expect(c.HostConfig.Binds).to.deep.equal(['airtasks-test-volume:/data']);
    expect(c.Config.User).to.equal('65534');
    expect(c.Config.WorkingDir).to.equal('/tmp');
    expect(c.Config.Env).to.include.members([
      'GREETING=hello dock',
      'AIRTASKS_RUN_ID=' + t.runId,
      'AIRTASKS_TMP_DIR=/tmp/airtasks',
    ]);
    await d.getContainer(info!.Id).remove({ force: true });
    await d
      .getVolume('airtasks-test-volume')
      .remove()
      .catch(() => undefined);
  });

  it('gives the task the AIRTASKS_* environment a bash task gets, the worker id included', async function () {
    const command =
      'echo "$AIRTASKS_DAG_ID $AIRTASKS_RUN_ID $AIRTASKS_TASK_ID $AIRTASKS_TRY_NUMBER $AIRTASKS_LOGICAL_DATE ' +
      '$AIRTASKS_CONF [${AIRTASKS_WORKER_ID-unset}]"';
    const t = context({ image: BASE_IMAGE, command }, { conf: { n: 1 } });
    const onWorker = { ...t.ctx, workerId: 'worker-7' };
    expect((await dockerOperator.execute(onWorker)).output).to.equal(
      `docker_test ${t.runId} dock 1 2026-01-02T03:04:05.000Z {"n":1} [worker-7]`,
    );
    // In `dags test` there is no worker: the variable is not set at all.
    const local = context({ image: BASE_IMAGE, command: 'echo "[${AIRTASKS_WORKER_ID-unset}]"' });
    expect((await dockerOperator.execute(local.ctx)).output).to.equal('[unset]');
  });

  it('binds a writable host temp dir and names it in AIRTASKS_TMP_DIR', async function () {
    const t = context({
      image: BASE_IMAGE,
      user: '65534',
      command:
        'echo scratch > "$AIRTASKS_TMP_DIR/f" && cat "$AIRTASKS_TMP_DIR/f" && echo "$AIRTASKS_TMP_DIR"',
    });
    expect((await dockerOperator.execute(t.ctx)).output).to.equal('/tmp/airtasks');
    expect(t.sink.of('stdout')).to.include('scratch');
    const custom = context({
      image: BASE_IMAGE,
      tmpDir: '/scratch',
      command: 'test -d /scratch && echo $AIRTASKS_TMP_DIR',
    });
    expect((await dockerOperator.execute(custom.ctx)).output).to.equal('/scratch');
    const none = context({
      image: BASE_IMAGE,
      tmpDir: false,
      command: 'echo "[$AIRTASKS_TMP_DIR]"; test ! -d /tmp/airtasks',
    });
    expect((await dockerOperator.execute(none.ctx)).output).to.equal('[]');
  });

  it('on abort (timeout or cancel) stops and removes the container', async function () {
    const t = context({ image: BASE_IMAGE, command: 'echo started; sleep 60' });
    const started = Date.now();
    const p = dockerOperator.execute(t.ctx);
    await until(() => t.sink.of('stdout').includes('started'), 15_000, 'the container to start');
    expect(await findTaskContainers(d, { runId: t.runId })).to.have.length(1);
    t.abort.abort('timed out after 1000 ms');
    const err = await fails(p);
    expect(err.message).to.equal('stopped: timed out after 1000 ms');
    expect(Date.now() - started).to.be.lessThan(20_000);
    expect(await findTaskContainers(d, { runId: t.runId })).to.have.length(0);
  });

  it('does not start anything when aborted before it begins', async function () {
    const t = context({ image: BASE_IMAGE, command: 'echo never' });
    t.abort.abort('cancelled');
    const err = await fails(dockerOperator.execute(t.ctx));
    expect(err.message).to.equal('stopped: cancelled');
    expect(await findTaskContainers(d, { runId: t.runId })).to.have.length(0);
  });

  it('reports an out-of-memory kill', async function () {
    const t = context({
      image: BASE_IMAGE,
      memory: '16m',
      hostConfig: { MemorySwap: 16 * 1024 * 1024 },
      // The shell keeps 64 MiB in a variable: over the limit.
      command: 'x=$(head -c 64m /dev/zero | tr "\\0" a); echo ${#x}',
    });
    const err = await fails(dockerOperator.execute(t.ctx));
    expect(err.message).to.match(/exited with code 137 \(out of memory/);
    expect(err.exitCode).to.equal(137);
  });
});
