/**
 * The whole stack, for real, as a user deploys it (README, "Packaging and deploying"): init -> build
 * --tag 1.0.0 -> secrets create -> nodes label -> deploy --swarm, on this machine's one-node swarm.
 * The generated stack is deployed unchanged but for airtasks.json's "images": postgres, rabbitmq and
 * the proxy are local stand-ins built from Debian packages (scripts/docker/build-stack-images.sh),
 * since no image can be pulled here. Then, from the project folder and with no database configured
 * (commands run in the stack's scheduler container):
 *   - every service reaches its replicas without restarting (they wait for postgres and rabbitmq);
 *   - a bash DAG, a docker DAG with variables as files and a DAG on a second queue run in it;
 *   - the proxy's routes, with curl, for basic auth on/off x TLS on/off (401/200, never 500; HTTP
 *     redirected to HTTPS), RabbitMQ's management API behind its own login, %2F kept;
 *   - status shows every queue's depth;
 *   - build --tag 2.0.0 + deploy --swarm while long tasks run: none lost, the new release's migration
 *     runs once and before the new scheduler starts;
 *   - undeploy + deploy keeps the broker's and the database's data; undeploy.
 * Only loopback is used from the host (the proxy's published ports on 127.0.0.1); the services talk
 * over the stack's own overlay network.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { runCli } from '../helpers/cli.js';
import { BASE_IMAGE, ensureBaseImage, requireDocker } from '../helpers/docker.js';
import { ensureSwarm, installAirtasks, scaffoldTestProject, type TestProject } from '../helpers/project.js';
import {
  curl,
  dockerExec,
  eventually,
  requireStackImages,
  selfSignedCertificate,
  serviceContainer,
  serviceTasks,
  type StackImageKey,
} from '../helpers/stack.js';

const run = promisify(execFile);

const STACK_DAGS = `import { dag } from 'airtasks';

/** A DAG on the second queue: only worker-other consumes it. */
export const other = dag('e2e_other_queue', { defaults: { queue: 'other', retries: 0 } });
other.bash('where', { command: 'echo "queue other, bash $BASH_VERSION"' });

/**
 * For the upgrade: two long bash tasks on the first queue (concurrency 2: both run at once, on the
 * worker of the old release), and one after them, queued only once they ended (by then the old worker
 * drains, so the new one runs it).
 */
export const long = dag('e2e_long', { defaults: { queue: 'worker', retries: 0 } });
const sleeps = [0, 1].map((i) =>
  long.bash(\`sleep_\${i}\`, { command: 'sleep 25; echo "slept, try $AIRTASKS_TRY_NUMBER"' }),
);
long.bash('after', { command: 'echo "after, try $AIRTASKS_TRY_NUMBER"', upstream: sleeps });
`;

/** The release after 1.0.0 brings a migration (as a new airtasks would): it must run once, first. */
const UPGRADE_MIGRATION = `CREATE TABLE e2e_upgrade (applied_at timestamptz NOT NULL DEFAULT clock_timestamp());
INSERT INTO e2e_upgrade DEFAULT VALUES;
`;

const PROXY_SECRETS = [
  'basic_auth_username',
  'basic_auth_password',
  'ssl_certificate',
  'ssl_certificate_key',
];
/** The proxy's secrets with values: swapped in for the blank ones with `docker service update`. */
const on = (s: string) => `e2e_${s}`;

interface RunDetail {
  runId: string;
  state: string;
  tasks: Array<{
    taskId: string;
    state: string;
    tryNumber: number;
    queue: string;
    tries: Array<{ tryNumber: number; state: string; workerId: string | null }>;
  }>;
}

describe('e2e: the whole stack (local postgres, rabbitmq and nginx images) on a one-node swarm', function () {
  this.timeout(900_000);
  let d: Docker;
  let images: Record<StackImageKey, string>;
  let project: TestProject;
  let cwd: string;
  let stack: string;
  let image: string;
  let certDir: string;
  let deployed = false;
  const pgPassword = `pg-${randomBytes(6).toString('hex')}`;
  const mqPassword = `mq-${randomBytes(6).toString('hex')}`;
  const mq = `airtasks:${mqPassword}`;
  const proxyUser = 'ada';
  const proxyPassword = `px-${randomBytes(6).toString('hex')}`;
  const secretNames = [
    'postgres_password',
    'rabbitmq_password',
    'airtasks_secret_key',
    ...PROXY_SECRETS,
    ...PROXY_SECRETS.map(on),
  ];
  // No database configured here: commands that need one run inside the stack.
  const cli = (args: string[], timeoutMs = 120_000, stdin?: string) =>
    runCli(args, { AIRTASKS_DATABASE_URL: '', AIRTASKS_DATABASE_URL_FILE: '' }, timeoutMs, {
      cwd,
      ...(stdin !== undefined ? { stdin } : {}),
    });
  const json = async <T>(args: string[], timeoutMs?: number): Promise<T> => {
    const r = await cli([...args, '--json'], timeoutMs);
    expect(r.code, `airtasks ${args.join(' ')}: ${r.stdout}${r.stderr}`).to.equal(0);
    return JSON.parse(r.stdout) as T;
  };
  const servicePs = async () => {
    const { stdout } = await run('docker', [
      'stack',
      'ps',
      stack,
      '--no-trunc',
      '--format',
      '{{.Name}} {{.Image}} {{.CurrentState}} {{.Error}}',
    ]).catch((e: Error) => ({ stdout: e.message }));
    return stdout;
  };
  const logsOf = async (service: string) => {
    const r = await run('docker', ['service', 'logs', '--raw', '--tail', '60', `${stack}_${service}`]).catch(
      (e: { stdout?: string; stderr?: string; message: string }) => e,
    );
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.slice(-6000);
  };

  before(async function () {
    d = await requireDocker(this);
    images = await requireStackImages(this);
    await ensureSwarm();
    await ensureBaseImage();
    project = await scaffoldTestProject(['--queues', 'worker:2,other:1']);
    cwd = project.dir;
    stack = project.name;
    image = `airtasks-test/${project.name}`;
    await writeFile(path.join(cwd, 'dags', 'e2e_stack.ts'), STACK_DAGS);
    const cfgFile = path.join(cwd, 'airtasks.json');
    const cfg = JSON.parse(await readFile(cfgFile, 'utf8')) as Record<string, unknown>;
    expect(cfg.images).to.deep.equal({
      postgres: 'postgres:16-alpine',
      rabbitmq: 'rabbitmq:3.13-management-alpine',
      proxy: 'nginx:1.27-alpine',
    });
    // The one change to what init wrote: which images the stack runs.
    await writeFile(cfgFile, JSON.stringify({ ...cfg, image, images }, null, 2));
    await installAirtasks(cwd);
    certDir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-stack-tls-'));
    // Secrets of an aborted run (docker refuses to remove one a service still uses).
    for (const s of secretNames)
      await d
        .getSecret(s)
        .remove()
        .catch(() => undefined);
  });

  after(async () => {
    if (deployed) await cli(['undeploy'], 180_000);
    if (!d) return;
    for (const s of secretNames)
      await d
        .getSecret(s)
        .remove()
        .catch(() => undefined);
    // The volumes are in use until swarm has removed the stack's last containers, a little later.
    for (const v of ['pgdata', 'rabbitmq'])
      await eventually(
        `volume ${stack}_${v} removed`,
        () =>
          d
            .getVolume(`${stack}_${v}`)
            .remove()
            .then(
              () => true,
              (e: { statusCode?: number }) => (e.statusCode === 404 ? true : undefined),
            ),
        60_000,
      ).catch(() => undefined);
    await runCli(['nodes', 'label', 'self', '-q', 'worker', '-q', 'other', '--remove'], {}, 30_000);
    for (const tag of ['1.0.0', '2.0.0'])
      await d
        .getImage(`${image}:${tag}`)
        .remove({ force: true })
        .catch(() => undefined);
    await project?.remove();
    if (certDir) await rm(certDir, { recursive: true, force: true });
  });

  /** Every service at its replicas; the status shown from the project folder. */
  const converged = (tag: string) =>
    eventually(
      `every service of ${stack} running ${tag}`,
      async () => {
        const st = await cli(['status', '--json'], 60_000);
        const s = JSON.parse(st.stdout) as {
          services: Array<{ name: string; running: number; desired: number; image: string }>;
          queues: Array<{ queue: string; depth: { ready: number } | null; workers: number | null }>;
        };
        const ours = s.services.filter((x) => x.name.startsWith(`${stack}_`));
        const ready =
          ours.length === 8 &&
          ours.every((x) => x.desired === 1 && x.running === 1) &&
          ours.filter((x) => x.image.startsWith(image)).every((x) => x.image === `${image}:${tag}`) &&
          s.queues.length === 2 &&
          s.queues.every((q) => q.depth !== null && q.workers === 1);
        return ready ? s : undefined;
      },
      300_000,
      async () => `${(await cli(['status'], 60_000)).stdout}\n${await servicePs()}`,
    );

  it('deploys the generated stack, and every service reaches its replicas without restarting', async () => {
    const b = await cli(
      ['build', '--tag', '1.0.0', '--build-arg', `BASE_IMAGE=${BASE_IMAGE}`, '--json'],
      600_000,
    );
    expect(b.code, b.stderr).to.equal(0);
    // build wrote the images of airtasks.json into the stack, and nothing else changed but the tag.
    const stackFile = await readFile(path.join(cwd, 'deploy/stack.yml'), 'utf8');
    for (const key of ['postgres', 'rabbitmq', 'proxy'] as const)
      expect(stackFile).to.include(`image: ${images[key]}`);
    expect(stackFile).to.not.include('image: postgres:16-alpine');
    expect(
      await d
        .getImage(`${image}:latest`)
        .inspect()
        .catch(() => null),
      'no :latest is made',
    ).to.equal(null);

    const { cert, key } = await selfSignedCertificate(certDir);
    const values: Record<string, { stdin?: string; file?: string }> = {
      postgres_password: { stdin: pgPassword },
      rabbitmq_password: { stdin: mqPassword },
      airtasks_secret_key: { stdin: 'b2'.repeat(32) },
      ...Object.fromEntries(PROXY_SECRETS.map((s) => [s, { file: '/dev/null' }])),
      [on('basic_auth_username')]: { stdin: proxyUser },
      [on('basic_auth_password')]: { stdin: proxyPassword },
      [on('ssl_certificate')]: { file: cert },
      [on('ssl_certificate_key')]: { file: key },
    };
    await Promise.all(
      Object.entries(values).map(async ([name, v]) => {
        const r = await cli(
          ['secrets', 'create', name, ...(v.file ? ['--file', v.file] : [])],
          30_000,
          v.stdin,
        );
        expect(r.code, r.stderr).to.equal(0);
      }),
    );
    const label = await cli(['nodes', 'label', 'self', '-q', 'worker', '-q', 'other'], 30_000);
    expect(label.code, label.stderr).to.equal(0);

    const dep = await json<{ services: string[] }>(['deploy', '--swarm'], 180_000);
    deployed = true;
    expect(dep.services).to.have.members([
      'postgres',
      'rabbitmq',
      'scheduler',
      'worker-worker',
      'worker-other',
      'autoscaler',
      'web',
      'proxy',
    ]);
    await converged('1.0.0');
    // Started together, the airtasks services waited for postgres and rabbitmq instead of exiting, and
    // the autoscaler (no queue has a "max") idles instead of exiting: one task each, none restarted.
    for (const s of dep.services) {
      const tasks = await serviceTasks(d, `${stack}_${s}`);
      expect(tasks, `${s}: ${JSON.stringify(tasks)}\n${await logsOf(s)}`).to.have.length(1);
    }
  });

  it('runs a bash DAG, a docker DAG with variables as files and a DAG on a second queue', async () => {
    await eventually('the DAGs, parsed by the deployed scheduler', async () => {
      const l = await cli(['dags', 'list', '--json']);
      return l.code === 0 && l.stdout.includes('"e2e_other_queue"') ? true : undefined;
    });
    const set = await cli(['variables', 'set', 'example_api_token', 'token-of-22-bytes-long', '--secret']);
    expect(set.code, set.stderr).to.equal(0);
    const trigger = async (dagId: string): Promise<RunDetail> => {
      const t = await cli(['trigger', 'dag', dagId, '--wait', '--timeout', '240', '--json'], 300_000);
      const r = JSON.parse(t.stdout || '{}') as RunDetail;
      if (t.code !== 0) {
        const logs = await Promise.all((r.tasks ?? []).map((x) => cli(['tasks', 'logs', r.runId, x.taskId])));
        expect.fail(`${dagId}: ${t.stdout}${t.stderr}\n${logs.map((l) => l.stdout + l.stderr).join('\n')}`);
      }
      return r;
    };
    const [bash, docker, other] = await Promise.all([
      trigger('example_interleaved'),
      trigger('example_docker_variables'),
      trigger('e2e_other_queue'),
    ]);
    expect(bash.state).to.equal('success');
    expect(bash.tasks).to.have.length(8);
    expect(docker.state).to.equal('success');
    const tokenLog = await cli(['tasks', 'logs', docker.runId, 'read_token']);
    expect(tokenLog.stdout).to.include('token has 22 bytes');
    expect(tokenLog.stdout).to.not.include('token-of-22-bytes-long');
    expect(other.state).to.equal('success');
    const shown = await json<RunDetail>(['runs', 'show', other.runId]);
    expect(shown.tasks[0]!.queue).to.equal('other');
    const log = await cli(['tasks', 'logs', other.runId, 'where']);
    expect(log.stdout).to.match(/queue other, bash \d/);
    // The docker task ran the tag that was built (there is no :latest).
    const ran = await json<RunDetail & { dagHash: string }>(['runs', 'show', docker.runId]);
    expect(ran.state).to.equal('success');
  });

  it('serves the proxy routes with basic auth on/off and TLS on/off (never 500)', async () => {
    const sources = new Map(PROXY_SECRETS.map((s) => [s, s]));
    const codes: number[] = [];
    const ask = async (url: string, o: Parameters<typeof curl>[1] = {}) => {
      const r = await curl(url, o);
      codes.push(r.code);
      return r;
    };
    const mode = async (auth: boolean, tls: boolean) => {
      const args: string[] = [];
      for (const s of PROXY_SECRETS) {
        const want = (s.startsWith('basic') ? auth : tls) ? on(s) : s;
        if (sources.get(s) === want) continue;
        args.push('--secret-rm', sources.get(s)!, '--secret-add', `source=${want},target=${s}`);
        sources.set(s, want);
      }
      if (args.length > 0) await run('docker', ['service', 'update', '-q', ...args, `${stack}_proxy`]);
      const base = tls ? 'https://127.0.0.1' : 'http://127.0.0.1';
      const what = `auth ${auth ? 'on' : 'off'}, TLS ${tls ? 'on' : 'off'}`;
      await eventually(`the proxy (${what})`, async () =>
        (await curl(`${base}/healthz`)).code === 200 ? true : undefined,
      );
      // The proxy's own route.
      expect((await ask(`${base}/`)).code, what).to.equal(auth ? 401 : 200);
      if (auth) {
        expect((await ask(`${base}/`, { user: `${proxyUser}:${proxyPassword}` })).code, what).to.equal(200);
        expect((await ask(`${base}/`, { user: `${proxyUser}:wrong` })).code, what).to.equal(401);
        expect((await ask(`${base}/`, { user: mq })).code, what).to.equal(401);
      }
      if (tls) {
        const r = await ask('http://127.0.0.1/rabbitmq/api/overview');
        expect(r.code, what).to.equal(301);
        expect(r.location, what).to.equal('https://127.0.0.1/rabbitmq/api/overview');
      }
      // RabbitMQ's management UI and API behind RabbitMQ's own login, whatever the proxy's auth.
      const ui = await ask(`${base}/rabbitmq/`);
      expect(ui.code, what).to.equal(200);
      expect(ui.body, what).to.include('RabbitMQ');
      expect((await ask(`${base}/rabbitmq/api/overview`)).code, what).to.equal(401);
      const overview = await eventually(`RabbitMQ's API (${what})`, async () => {
        const r = await ask(`${base}/rabbitmq/api/overview`, { user: mq });
        return r.code === 200 ? r : undefined;
      });
      expect(JSON.parse(overview.body)).to.have.property('rabbitmq_version');
      // The default vhost's %2F reaches RabbitMQ encoded.
      const q = await ask(`${base}/rabbitmq/api/queues/%2F/e2e_persist`, { user: mq });
      expect(q.code, `${what}: ${q.body}`).to.equal(200);
      expect(JSON.parse(q.body)).to.include({ name: 'e2e_persist', vhost: '/' });
    };

    // A durable queue made through the proxy: the redeploy test looks for it again.
    const made = await eventually("RabbitMQ's API", async () => {
      const r = await ask('http://127.0.0.1/rabbitmq/api/queues/%2F/e2e_persist', {
        user: mq,
        method: 'PUT',
        data: '{"durable": true}',
      });
      return r.code === 201 || r.code === 204 ? r : undefined;
    });
    expect(made.code).to.be.oneOf([201, 204]);
    await mode(false, false);
    await mode(true, false);
    await mode(true, true);
    await mode(false, true);
    expect(codes).to.not.include(500);
    expect(codes).to.not.include(0);
  });

  it('shows every queue with its depth from the project folder (status)', async () => {
    const s = await json<{
      queues: Array<{ queue: string; depth: { ready: number } | null; workers: number; services: string[] }>;
    }>(['status']);
    expect(s.queues.map((q) => q.queue)).to.deep.equal(['other', 'worker']);
    for (const q of s.queues) {
      expect(q.depth?.ready, q.queue).to.be.a('number');
      expect(q.workers, q.queue).to.equal(1);
      expect(q.services).to.deep.equal([`${stack}_worker-${q.queue}`]);
    }
    const text = await cli(['status']);
    expect(text.code, text.stderr).to.equal(0);
    // QUEUE, QUEUED TASKS, WORKERS, CONCURRENCY, READY: numbers (UNACKED is "?" with RabbitMQ).
    const queueRows = text.stdout.split('\n').filter((l) => /^(worker|other)\s/.test(l));
    expect(queueRows).to.have.length(2);
    for (const row of queueRows) expect(row, text.stdout).to.match(/^\w+\s+\d+\s+\d+\s+\d+\s+\d+\s/);
    // The autoscaler still runs its first task (it idles: no queue has a "max").
    expect(await serviceTasks(d, `${stack}_autoscaler`)).to.have.length(1);
  });

  it('upgrades to a new tag while long tasks run: none is lost, the migration runs once and first', async () => {
    const migrations = path.join(cwd, 'node_modules/airtasks/dist/engine/store/migrations');
    await writeFile(path.join(migrations, '9999_e2e_upgrade.sql'), UPGRADE_MIGRATION);
    const b = await cli(
      ['build', '--tag', '2.0.0', '--build-arg', `BASE_IMAGE=${BASE_IMAGE}`, '--json'],
      600_000,
    );
    expect(b.code, b.stderr).to.equal(0);

    const started = await json<{ runId: string }>(['trigger', 'dag', 'e2e_long']);
    await eventually('two long tasks running on the 1.0.0 worker', async () => {
      const r = await json<RunDetail>(['runs', 'show', started.runId]);
      return r.tasks.filter((t) => t.state === 'running').length === 2 ? true : undefined;
    });
    const dep = await cli(['deploy', '--swarm', '--json'], 180_000);
    expect(dep.code, dep.stderr).to.equal(0);

    const ended = await eventually(
      'the long run to end',
      async () => {
        const r = await json<RunDetail>(['runs', 'show', started.runId]);
        return ['success', 'failed', 'cancelled'].includes(r.state) ? r : undefined;
      },
      300_000,
    );
    expect(ended.state, JSON.stringify(ended.tasks)).to.equal('success');
    for (const t of ended.tasks) {
      expect(t.state, t.taskId).to.equal('success');
      // Finished on the old worker while it drained, or lost once and run again: never more.
      expect(t.tryNumber, JSON.stringify(t)).to.be.at.most(2);
      expect(
        t.tries.filter((x) => x.state === 'success'),
        JSON.stringify(t),
      ).to.have.length(1);
    }
    // The long tasks started on the old release's worker; the last one ran on the new one.
    const workerOf = (id: string) => ended.tasks.find((t) => t.taskId === id)!.tries[0]!.workerId;
    expect(workerOf('after'), JSON.stringify(ended.tasks)).to.not.equal(workerOf('sleep_0'));
    await converged('2.0.0');

    // The migration of 2.0.0: applied once (new workers and the scheduler raced for it under the lock),
    // and before the new scheduler started scheduling.
    const pg = await serviceContainer(d, `${stack}_postgres`);
    const sql = async (q: string) =>
      (await dockerExec(pg!, ['psql', '-U', 'airtasks', '-d', 'airtasks', '-At', '-c', q])).trim();
    expect(await sql('SELECT count(*) FROM airtasks.migrations WHERE id = 9999')).to.equal('1');
    expect(await sql('SELECT count(*) FROM airtasks.e2e_upgrade')).to.equal('1');
    const appliedAt = Number(
      await sql('SELECT extract(epoch FROM applied_at) * 1000 FROM airtasks.e2e_upgrade'),
    );
    const scheduler = await serviceContainer(d, `${stack}_scheduler`);
    const info = await d.getContainer(scheduler!).inspect();
    expect(info.Config.Image).to.match(new RegExp(`^${image}:2\\.0\\.0`));
    const { stdout, stderr } = await run('docker', ['logs', scheduler!]);
    const startedLine = `${stdout}\n${stderr}`
      .split('\n')
      .map((l) => {
        try {
          return JSON.parse(l) as { msg?: string; time?: number };
        } catch {
          return {};
        }
      })
      .find((l) => l.msg === 'scheduler started');
    expect(startedLine?.time, `${stdout}${stderr}`).to.be.a('number');
    expect(appliedAt).to.be.below(startedLine!.time!);
  });

  it('keeps the broker and the database across undeploy and deploy, and undeploys', async () => {
    const before = await json<Array<{ runId: string }>>(['runs', 'list']);
    const un = await json<{ removed: string[] }>(['undeploy'], 180_000);
    deployed = false;
    expect(un.removed).to.include(`${stack}_rabbitmq`);

    await json(['deploy', '--swarm'], 180_000);
    deployed = true;
    await converged('2.0.0');
    // RabbitMQ's node name is the stack's host name, so it finds its data (the durable queue) again.
    const q = await eventually('the durable queue made before the redeploy', async () => {
      const r = await curl('http://127.0.0.1/rabbitmq/api/queues/%2F/e2e_persist', { user: mq });
      return r.code === 200 ? r : undefined;
    });
    expect(JSON.parse(q.body)).to.include({ name: 'e2e_persist', durable: true });
    const afterRuns = await json<Array<{ runId: string }>>(['runs', 'list']);
    expect(afterRuns.map((r) => r.runId)).to.include.members(before.map((r) => r.runId));

    const last = await json<{ removed: string[] }>(['undeploy'], 180_000);
    deployed = false;
    expect(last.removed).to.include(`${stack}_scheduler`);
    const left = await d.listServices({ filters: { label: [`com.docker.stack.namespace=${stack}`] } });
    expect(left).to.have.length(0);
  });
});
