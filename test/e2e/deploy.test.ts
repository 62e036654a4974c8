/**
 * The whole lifecycle on this machine: init --yes -> build (FROM the local base image) -> secrets
 * create -> nodes label -> deploy --swarm (with an override giving the airtasks services host
 * networking and this machine's PostgreSQL and RabbitMQ; the stack's own postgres, rabbitmq and
 * proxy are scaled to 0 since no image can be pulled) -> a triggered run succeeds on the worker
 * running as a swarm service -> status -> undeploy. All traffic stays on loopback.
 */
import { expect } from 'chai';
import path from 'node:path';
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
import { ensureSwarm, type TestProject } from '../helpers/project.js';

describe('e2e: init -> build -> secrets -> deploy --swarm -> trigger -> undeploy', function () {
  this.timeout(600_000);
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
    await ensureSwarm();
    setup = await startDeployTest(d);
    ({ project, image, env } = setup);
  });

  after(async () => {
    if (deployed) await runCli(['undeploy'], {}, 120_000, { cwd: project.dir });
    if (d) {
      for (const s of STACK_SECRETS)
        await d
          .getSecret(`${project.name}_${s}`)
          .remove()
          .catch(() => undefined);
      await runCli(['nodes', 'label', 'self', '--queue', 'worker', '--remove'], {}, 30_000);
    }
    await setup?.cleanup();
  });

  it('runs a DAG on a worker deployed as a swarm service', async () => {
    const cwd = project.dir;
    await buildTestImage(cwd, image, 300_000);

    // The test's secrets have names of their own (the swarm is shared); the override maps them.
    const override = path.join(cwd, 'test.override.yml');
    await writeHostOverride(override, {
      schema: setup.db.schema,
      queuePrefix: setup.queuePrefix,
      secretName: (s) => `${project.name}_${s}`,
    });

    // Missing secrets are named before anything is deployed.
    const early = await runCli(['deploy', '--swarm', '-f', override], {}, 60_000, { cwd });
    expect(early.code).to.equal(3);
    expect(early.stderr).to.include(`${project.name}_postgres_password`).and.include('secrets create');

    for (const s of STACK_SECRETS) {
      const r = await runCli(['secrets', 'create', `${project.name}_${s}`], {}, 30_000, {
        stdin: testSecretValue(s),
      });
      expect(r.code, r.stderr).to.equal(0);
    }
    const label = await runCli(['nodes', 'label', 'self', '--queue', 'worker', '--json'], {}, 30_000);
    expect(label.code, label.stderr).to.equal(0);
    expect(JSON.parse(label.stdout).queues).to.include('worker');

    const dep = await runCli(['deploy', '--swarm', '-f', override, '--json'], {}, 180_000, { cwd });
    expect(dep.code, dep.stderr).to.equal(0);
    deployed = true;
    expect(JSON.parse(dep.stdout).services).to.include.members(['scheduler', 'worker-worker']);

    // The scheduler (a swarm service) parses the image's DAGs into this test's schema.
    const end = Date.now() + 180_000;
    for (;;) {
      const l = await runCli(['dags', 'list', '--json'], env, 30_000, { cwd });
      if (l.code === 0 && l.stdout.includes('example_greetings')) break;
      if (Date.now() > end) {
        const st = await runCli(['status'], env, 30_000, { cwd });
        throw new Error(
          `the scheduler service never registered the DAGs:\n${l.stdout}${l.stderr}\n${st.stdout}`,
        );
      }
      await sleep(1000);
    }

    // No worker runs on this machine outside the swarm: success means the swarm worker ran it.
    const t = await runCli(
      [
        'trigger',
        'dag',
        'example_greetings',
        '--conf',
        '{"name": "swarm"}',
        '--wait',
        '--timeout',
        '180',
        '--json',
      ],
      env,
      240_000,
      { cwd },
    );
    expect(t.code, t.stdout + t.stderr).to.equal(0);
    const run = JSON.parse(t.stdout) as { state: string; tasks: Array<{ taskId: string; state: string }> };
    expect(run.state).to.equal('success');
    expect(run.tasks.map((x) => x.state)).to.deep.equal(['success', 'success']);
    await expectSecretVariable(env, cwd);

    const st = await runCli(['status', '--json'], env, 60_000, { cwd });
    expect(st.code, st.stderr).to.equal(0);
    const status = JSON.parse(st.stdout) as {
      services: Array<{ name: string; running: number; desired: number }>;
      queues: Array<{
        queue: string;
        concurrency: number;
        services: string[];
        depth: { ready: number } | null;
      }>;
    };
    const worker = status.services.find((s) => s.name === `${project.name}_worker-worker`);
    expect(worker).to.include({ running: 1, desired: 1 });
    expect(status.queues).to.have.length(1);
    expect(status.queues[0]).to.deep.include({
      queue: 'worker',
      concurrency: 2,
      services: [`${project.name}_worker-worker`],
    });
    expect(status.queues[0]!.depth?.ready).to.equal(0);

    const un = await runCli(['undeploy', '--json'], {}, 120_000, { cwd });
    expect(un.code, un.stderr).to.equal(0);
    deployed = false;
    expect(JSON.parse(un.stdout).removed).to.include(`${project.name}_scheduler`);
    const left = await d.listServices({ filters: { label: [`com.docker.stack.namespace=${project.name}`] } });
    expect(left).to.have.length(0);
  });
});
