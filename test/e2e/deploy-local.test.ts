/**
 * The lifecycle on this machine with Docker Compose instead of a swarm: init --yes -> build (FROM
 * the local base image) -> local secrets -> deploy --dev (with the same kind of override as the
 * swarm test: host networking for the airtasks services and this machine's PostgreSQL and RabbitMQ;
 * postgres, rabbitmq and proxy at 0 replicas since no image can be pulled) -> a triggered run
 * succeeds on the worker running in a compose container -> a DAG file added on the host after the
 * deploy is parsed by the deployed scheduler and runs (--dev bind mounts) -> status -> undeploy.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { runCli } from '../helpers/cli.js';
import {
  buildTestImage,
  expectSecretVariable,
  startDeployTest,
  STACK_SECRETS,
  testSecretValue,
  writeHostOverride,
  type DeployTest,
} from '../helpers/deploy.js';
import { requireDocker, sleep } from '../helpers/docker.js';
import { requireService } from '../helpers/env.js';
import { type TestProject } from '../helpers/project.js';

const run = promisify(execFile);

async function composeInstalled(): Promise<boolean> {
  for (const [file, args] of [
    ['docker', ['compose', 'version']],
    ['docker-compose', ['version']],
  ] as const) {
    if (
      await run(file, [...args]).then(
        () => true,
        () => false,
      )
    )
      return true;
  }
  return false;
}

const LIVE_DAG = `import { dag } from 'airtasks';

export const live = dag('e2e_live_edit', {
  description: 'written on the host after the deploy',
  defaults: { queue: 'worker' },
});
// A node task: the test base image has no bash.
live.node('hello', {
  run: (ctx) => {
    ctx.log('live edit seen');
    return 'ok';
  },
});
`;

describe('e2e: init -> build -> local secrets -> deploy --dev (compose) -> trigger -> undeploy', function () {
  this.timeout(300_000);
  let d: Docker;
  let setup: DeployTest;
  let project: TestProject;
  let image: string;
  let env: NodeJS.ProcessEnv;
  let deployed = false;

  before(async function () {
    await requireService(this, 'postgres');
    await requireService(this, 'rabbitmq');
    d = await requireDocker(this);
    if (!(await composeInstalled())) {
      if (process.env.CI === 'true')
        throw new Error('Docker Compose is not installed; CI installs docker-compose (.ci/run)');
      this.skip();
    }
    setup = await startDeployTest(d);
    ({ project, image, env } = setup);
  });

  after(async () => {
    if (deployed) await runCli(['undeploy', '--no-swarm'], {}, 120_000, { cwd: project.dir });
    await setup?.cleanup();
  });

  it('runs DAGs, one added after the deploy, on a worker in a compose container', async () => {
    const cwd = project.dir;
    await buildTestImage(cwd, image, 180_000);

    // The swarm test's override, as is: compose gets it through the same conversion as the stack.
    const override = path.join(cwd, 'test.override.yml');
    await writeHostOverride(override, { schema: setup.db.schema, queuePrefix: setup.queuePrefix });

    // Missing secrets are named before anything else happens.
    const early = await runCli(['deploy', '-f', override], {}, 60_000, { cwd });
    expect(early.code).to.equal(3);
    // oclif wraps long messages: join the lines back.
    const unwrap = (t: string) => t.replace(/\s*\n ›\s*/g, ' ');
    expect(unwrap(early.stderr)).to.include(STACK_SECRETS.join(', '));
    expect(unwrap(early.stderr)).to.include('airtasks secrets create --local NAME');

    await Promise.all(
      STACK_SECRETS.map(async (s) => {
        const r = await runCli(['secrets', 'create', '--local', s], {}, 30_000, {
          cwd,
          stdin: testSecretValue(s),
        });
        expect(r.code, r.stderr).to.equal(0);
      }),
    );
    const secretFile = path.join(cwd, '.airtasks', 'secrets', 'rabbitmq_password');
    expect((await stat(secretFile)).mode & 0o777).to.equal(0o600);
    expect((await stat(path.dirname(secretFile))).mode & 0o777).to.equal(0o700);
    const ls = await runCli(['secrets', 'ls', '--local', '--json'], {}, 30_000, { cwd });
    expect(JSON.parse(ls.stdout).secrets.map((s: { name: string }) => s.name)).to.have.members(STACK_SECRETS);
    expect(ls.stdout).to.not.include('guest');

    // Neither compose on PATH: exit 4, saying how to install one.
    const bin = await mkdtemp(path.join(os.tmpdir(), 'airtasks-nocompose-'));
    try {
      await symlink(process.execPath, path.join(bin, 'node'));
      const none = await runCli(['deploy', '-f', override], { PATH: bin }, 60_000, { cwd });
      expect(none.code, none.stderr).to.equal(4);
      expect(unwrap(none.stderr)).to.include('apt-get install docker-compose').and.include('--swarm');
    } finally {
      await rm(bin, { recursive: true, force: true });
    }

    const dep = await runCli(['deploy', '--dev', '-f', override, '--json'], {}, 120_000, { cwd });
    expect(dep.code, dep.stderr).to.equal(0);
    deployed = true;
    const result = JSON.parse(dep.stdout) as { target: string; services: string[]; files: string[] };
    expect(result.target).to.equal('compose');
    expect(result.services).to.include.members(['scheduler', 'worker-worker']);
    const containers = await d.listContainers({
      filters: { label: [`com.docker.compose.project=${project.name}`] },
    });
    expect(containers.map((c) => c.Labels['com.docker.compose.service']).sort()).to.deep.equal([
      'scheduler',
      'worker-worker',
    ]);
    expect(containers.every((c) => c.HostConfig.NetworkMode === 'host')).to.equal(true);

    const waitForDag = async (dagId: string) => {
      const end = Date.now() + 60_000;
      for (;;) {
        const l = await runCli(['dags', 'list', '--json'], env, 30_000, { cwd });
        if (l.code === 0 && l.stdout.includes(`"${dagId}"`)) return;
        if (Date.now() > end) {
          const logs = await run('docker', ['logs', '--tail', '50', `${project.name}_scheduler_1`]).catch(
            (e: Error) => ({ stdout: '', stderr: e.message }),
          );
          throw new Error(
            `the scheduler container never registered ${dagId}:\n${l.stdout}${l.stderr}\n${logs.stdout}${logs.stderr}`,
          );
        }
        await sleep(500);
      }
    };
    const trigger = async (dagId: string, conf: string) => {
      const t = await runCli(
        ['trigger', 'dag', dagId, '--conf', conf, '--wait', '--timeout', '60', '--json'],
        env,
        90_000,
        { cwd },
      );
      const r = JSON.parse(t.stdout) as {
        runId: string;
        state: string;
        tasks: Array<{ taskId: string; state: string }>;
      };
      if (t.code !== 0) {
        const logs = await Promise.all(
          r.tasks.map((x) => runCli(['tasks', 'logs', r.runId, x.taskId], env, 30_000, { cwd })),
        );
        expect.fail(`${dagId}: ${t.stdout}\n${logs.map((l) => l.stdout + l.stderr).join('\n')}`);
      }
      return r;
    };

    // No worker runs on this machine outside compose: success means the compose worker ran it.
    await waitForDag('example_greetings');
    const r1 = await trigger('example_greetings', '{"name": "compose"}');
    expect(r1.state).to.equal('success');
    expect(r1.tasks.map((x) => x.state)).to.deep.equal(['success', 'success']);
    await expectSecretVariable(env, cwd);

    // --dev: a DAG file written on the host now is seen by the deployed scheduler and worker.
    await writeFile(path.join(cwd, 'dags', 'live_edit.ts'), LIVE_DAG);
    await waitForDag('e2e_live_edit');
    const r2 = await trigger('e2e_live_edit', '{}');
    expect(r2.state).to.equal('success');
    const log = await runCli(['tasks', 'logs', r2.runId, 'hello'], env, 30_000, { cwd });
    expect(log.stdout).to.include('live edit seen');

    const st = await runCli(['status', '--json'], env, 60_000, { cwd });
    expect(st.code, st.stderr).to.equal(0);
    const status = JSON.parse(st.stdout) as {
      services: Array<{ name: string; mode: string; running: number; desired: number }>;
      queues: Array<{ queue: string; services: string[]; workers: number }>;
    };
    expect(status.services.find((s) => s.name === `${project.name}_worker-worker`)).to.include({
      mode: 'compose',
      running: 1,
      desired: 1,
    });
    expect(status.queues.find((q) => q.queue === 'worker')).to.deep.include({
      services: [`${project.name}_worker-worker`],
      workers: 1,
    });

    const un = await runCli(['undeploy', '--json'], {}, 120_000, { cwd });
    expect(un.code, un.stderr).to.equal(0);
    deployed = false;
    expect(JSON.parse(un.stdout)).to.deep.include({ target: 'compose' });
    expect(JSON.parse(un.stdout).removed).to.include(`${project.name}_scheduler`);
    const left = await d.listContainers({
      all: true,
      filters: { label: [`com.docker.compose.project=${project.name}`] },
    });
    expect(left).to.have.length(0);
    const again = await runCli(['undeploy', '--no-swarm'], {}, 60_000, { cwd });
    expect(again.code).to.equal(3);
  });
});
