/**
 * `airtasks init` end to end: the scaffolded project validates and its non-docker DAGs pass
 * `dags test` out of the box. The project's `airtasks` dependency is a symlink to this repository
 * (what `npm install` of a local path makes), so no registry is needed.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { ROOT, runCli } from '../helpers/cli.js';

const NO_SERVICES = { AIRTASKS_DATABASE_URL: '', AIRTASKS_BROKER_URL: '', CI: process.env.CI ?? '' };

/** Makes `import ... from 'airtasks'` resolve to this repository inside a scaffolded project. */
export async function linkAirtasks(projectDir: string): Promise<void> {
  await mkdir(path.join(projectDir, 'node_modules'), { recursive: true });
  await symlink(ROOT, path.join(projectDir, 'node_modules', 'airtasks'), 'dir');
}

describe('e2e: airtasks init', function () {
  this.timeout(120_000);
  let tmp: string;

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'airtasks-init-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('scaffolds a project that validates and whose DAGs pass dags test', async () => {
    const dir = path.join(tmp, 'demo');
    const r = await runCli(
      [
        'init',
        dir,
        '--yes',
        '--name',
        'demo_dags',
        '--queues',
        'worker:3,highmem:1',
        '--gpu',
        '--registry',
        'registry.local:5000',
        '--json',
      ],
      NO_SERVICES,
    );
    expect(r.code, r.stderr).to.equal(0);
    const result = JSON.parse(r.stdout) as { files: string[]; config: Record<string, unknown> };
    expect(result.files).to.include.members([
      'package.json',
      'tsconfig.json',
      'Dockerfile',
      '.dockerignore',
      '.gitignore',
      'airtasks.json',
      'README.md',
      'deploy/stack.yml',
      'deploy/proxy/entrypoint.sh',
      'plugins/greeting.ts',
      'dags/interleaved.ts',
      'dags/greetings.ts',
      'dags/docker_with_variables.ts',
      'dags/gpu.ts',
    ]);

    const config = JSON.parse(await readFile(path.join(dir, 'airtasks.json'), 'utf8'));
    expect(config).to.deep.equal({
      dagsFolder: 'dags',
      queues: { worker: { concurrency: 3 }, highmem: { concurrency: 1 }, gpu: { concurrency: 1 } },
      image: 'registry.local:5000/demo_dags',
      stackName: 'demo_dags',
      registry: 'registry.local:5000',
      images: {
        postgres: 'postgres:16-alpine',
        rabbitmq: 'rabbitmq:3.13-management-alpine',
        proxy: 'nginx:1.27-alpine',
      },
    });
    const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8'));
    expect(pkg.type).to.equal('module');
    expect(pkg.dependencies).to.have.property('airtasks');
    expect(await readFile(path.join(dir, 'Dockerfile'), 'utf8')).to.match(/^ARG BASE_IMAGE=/m);

    // One worker service per queue with its concurrency and a placement on that queue's node label.
    const stack = parse(await readFile(path.join(dir, 'deploy/stack.yml'), 'utf8'), { merge: true });
    expect(Object.keys(stack.services)).to.have.members([
      'postgres',
      'rabbitmq',
      'scheduler',
      'worker-worker',
      'worker-highmem',
      'worker-gpu',
      'autoscaler',
      'web',
      'proxy',
    ]);
    // The autoscaler scales the (replicated) worker services through a manager's engine.
    expect(stack.services.autoscaler.command).to.deep.equal(['autoscale']);
    expect(stack.services.autoscaler.deploy.placement.constraints).to.deep.equal(['node.role == manager']);
    expect(stack.services.autoscaler.volumes).to.deep.equal(['/var/run/docker.sock:/var/run/docker.sock']);
    for (const s of ['autoscaler', 'web'])
      expect(stack.services[s].environment.AIRTASKS_STACK, s).to.equal(
        '{{index .Service.Labels "com.docker.stack.namespace"}}',
      );
    expect(stack.services['worker-worker'].deploy).to.deep.include({ mode: 'replicated', replicas: 1 });
    expect(stack.services['worker-worker'].stop_grace_period).to.equal('60s');
    expect(stack.services['worker-highmem'].command).to.deep.equal([
      'worker',
      '--queues',
      'highmem',
      '--concurrency',
      '1',
      // Tasks run as the image's unprivileged user: no reach into the worker's environment or secrets.
      '--run-as',
      'airtasks',
    ]);
    expect(stack.services['worker-worker'].deploy.placement.constraints).to.deep.equal([
      'node.labels.airtasks.queue.worker == true',
    ]);
    expect(stack.services['worker-gpu'].environment.NVIDIA_VISIBLE_DEVICES).to.equal('all');
    expect(stack.services['worker-worker'].environment).to.not.have.property('NVIDIA_VISIBLE_DEVICES');
    expect(stack.services['worker-worker'].environment.AIRTASKS_DATABASE_PASSWORD_FILE).to.equal(
      '/run/secrets/postgres_password',
    );
    expect(stack.services.scheduler.image).to.equal('registry.local:5000/demo_dags:latest');
    // The third-party images are airtasks.json's, marked for build and deploy to keep in step.
    expect(stack.services.postgres.image).to.equal(config.images.postgres);
    expect(stack.services.proxy.deploy.labels['io.airtasks.image']).to.equal('proxy');
    // A worker in a container makes a container task's temp dir where the node's engine sees it too.
    expect(stack.services['worker-worker'].environment.AIRTASKS_DOCKER_TMPDIR).to.equal('/tmp');
    expect(stack.services['worker-worker'].volumes).to.include('/tmp:/tmp');
    // Reached by name without a virtual IP (no IPVS needed); RabbitMQ's data under a fixed node name.
    expect(stack.services.postgres.deploy.endpoint_mode).to.equal('dnsrr');
    expect(stack.services.rabbitmq.deploy.endpoint_mode).to.equal('dnsrr');
    expect(stack.services.rabbitmq.hostname).to.equal('rabbitmq');
    // Long-lived services wait for postgres and rabbitmq instead of exiting.
    for (const s of ['scheduler', 'worker-worker', 'autoscaler'])
      expect(stack.services[s].environment.AIRTASKS_CONNECT_WAIT, s).to.equal('120s');
    // The docker DAG runs the image at the tag the worker runs (build bakes it in), not :latest.
    const dockerDag = await readFile(path.join(dir, 'dags/docker_with_variables.ts'), 'utf8');
    expect(dockerDag).to.include("projectImageRef('registry.local:5000/demo_dags:latest')");
    expect(await readFile(path.join(dir, 'Dockerfile'), 'utf8')).to.match(/^ENV AIRTASKS_IMAGE=/m);

    await linkAirtasks(dir);
    const v = await runCli(['dags', 'validate', '--json'], NO_SERVICES, 60_000, { cwd: dir });
    expect(v.code, v.stdout + v.stderr).to.equal(0);
    const report = JSON.parse(v.stdout) as { dags: Array<{ dagId: string }>; errors: unknown[] };
    expect(report.errors).to.deep.equal([]);
    expect(report.dags.map((d) => d.dagId)).to.have.members([
      'example_interleaved',
      'example_greetings',
      'example_docker_variables',
      'example_gpu',
    ]);

    const t1 = await runCli(['dags', 'test', 'example_interleaved', '--json'], NO_SERVICES, 60_000, {
      cwd: dir,
    });
    expect(t1.code, t1.stdout + t1.stderr).to.equal(0);
    const run1 = JSON.parse(t1.stdout) as { state: string; tasks: Array<{ taskId: string; state: string }> };
    expect(run1.state).to.equal('success');
    expect(run1.tasks).to.have.length(8);

    const t2 = await runCli(
      ['dags', 'test', 'example_greetings', '--conf', '{"name": "Ada", "times": 2}', '--json'],
      NO_SERVICES,
      60_000,
      { cwd: dir },
    );
    expect(t2.code, t2.stdout + t2.stderr).to.equal(0);
    const run2 = JSON.parse(t2.stdout) as {
      state: string;
      tasks: Array<{ taskId: string; output?: unknown }>;
    };
    expect(run2.state).to.equal('success');
    expect(JSON.stringify(run2.tasks)).to.include('hello Ada, hello Ada');
  });

  it('leaves the GPU example out unless asked, and names the default queue in the DAGs', async () => {
    const dir = path.join(tmp, 'cpu-only');
    const r = await runCli(['init', dir, '--yes', '--queues', 'cpu:4', '--json'], NO_SERVICES);
    expect(r.code, r.stderr).to.equal(0);
    expect(existsSync(path.join(dir, 'dags/gpu.ts'))).to.equal(false);
    const config = JSON.parse(await readFile(path.join(dir, 'airtasks.json'), 'utf8'));
    expect(config.stackName).to.equal('cpu-only');
    expect(config.image).to.equal('cpu-only');
    expect(config.queues).to.deep.equal({ cpu: { concurrency: 4 } });
    expect(await readFile(path.join(dir, 'dags/greetings.ts'), 'utf8')).to.include("queue: 'cpu'");
  });

  it('refuses a non-empty directory without --force, and writes into it with --force', async () => {
    const dir = path.join(tmp, 'busy');
    await mkdir(dir);
    await writeFile(path.join(dir, 'notes.txt'), 'mine');
    const r = await runCli(['init', dir, '--yes'], NO_SERVICES);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('is not empty').and.include('--force');
    expect(existsSync(path.join(dir, 'airtasks.json'))).to.equal(false);

    const forced = await runCli(['init', dir, '--yes', '--force'], NO_SERVICES);
    expect(forced.code, forced.stderr).to.equal(0);
    expect(existsSync(path.join(dir, 'airtasks.json'))).to.equal(true);
    expect(await readFile(path.join(dir, 'notes.txt'), 'utf8')).to.equal('mine');
  });

  it('without a terminal and without --yes, stops with a clear message instead of waiting', async () => {
    const dir = path.join(tmp, 'no-tty');
    const r = await runCli(['init', dir], NO_SERVICES, 20_000);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('--yes');
    expect(existsSync(dir)).to.equal(false);
  });

  it('refuses invalid answers before writing anything', async () => {
    const dir = path.join(tmp, 'bad');
    const r = await runCli(['init', dir, '--yes', '--name', 'Bad Name'], NO_SERVICES);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('invalid project name');
    const q = await runCli(['init', dir, '--yes', '--queues', 'worker:0'], NO_SERVICES);
    expect(q.code).to.equal(2);
    expect(q.stderr).to.include('worker:0');
    expect(existsSync(dir)).to.equal(false);
  });
});
