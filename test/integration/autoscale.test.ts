/**
 * The autoscaler against the real things: `autoscale --once [--dry-run] --json` on a swarm service of
 * this machine's one-node swarm, with a backlog in RabbitMQ; a broker that cannot be read keeps the
 * size; the node-group hook is a real shell script.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { RabbitBroker } from '../../src/engine/broker/rabbitmq.js';
import { runNodeGroupHook } from '../../src/services/autoscale/node-group-hook.js';
import { Daemon, runCli } from '../helpers/cli.js';
import { sleep } from '../helpers/docker.js';
import { swarmQueueFixture } from '../helpers/autoscale.js';
import { BROKER_URL, DATABASE_URL, type freshDb, uniqueName } from '../helpers/env.js';

describe('autoscale: node-group hook', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-hook-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('runs the command with the node count as $1 and in the environment', async () => {
    const script = path.join(dir, 'resize.sh');
    await writeFile(
      script,
      `#!/bin/sh\necho "$AIRTASKS_QUEUE $AIRTASKS_DESIRED_NODES $1" >> ${dir}/calls\necho resized\n`,
    );
    await chmod(script, 0o755);
    const r = await runNodeGroupHook(`${script} "$1"`, { queue: 'gpu', desiredNodes: 3 });
    expect(r).to.deep.equal({ ok: true, exitCode: 0, output: 'resized', error: null });
    expect(await readFile(path.join(dir, 'calls'), 'utf8')).to.equal('gpu 3 3\n');
  });

  it('reports a failure and a timeout instead of throwing', async () => {
    const failed = await runNodeGroupHook('echo no quota >&2; exit 3', { queue: 'q', desiredNodes: 1 });
    expect(failed).to.deep.include({
      ok: false,
      exitCode: 3,
      output: 'no quota',
      error: 'exited with code 3',
    });
    const slow = await runNodeGroupHook('sleep 5', { queue: 'q', desiredNodes: 1, timeoutMs: 300 });
    expect(slow).to.deep.include({ ok: false, error: 'timed out after 0.3s' });
  });
});

describe('autoscale --once on a swarm service', function () {
  this.timeout(120_000);
  let d: Docker;
  let db: Awaited<ReturnType<typeof freshDb>>;
  let broker: RabbitBroker;
  let dir: string;
  let stack: string;
  let prefix: string;
  let service: string;
  let env: NodeJS.ProcessEnv;

  before(async function () {
    let image: string;
    ({ d, image, db, stack, service } = await swarmQueueFixture(this));
    prefix = uniqueName('as');
    broker = await RabbitBroker.connect({ url: BROKER_URL, prefix });
    dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-autoscale-'));
    const hookLog = path.join(dir, 'hook.log');
    await writeFile(
      path.join(dir, 'airtasks.json'),
      JSON.stringify({
        stackName: stack,
        queues: {
          q: {
            concurrency: 2,
            min: 1,
            max: 3,
            cooldown: '0s',
            nodeGroupHook: `echo "$AIRTASKS_QUEUE=$1" >> ${hookLog}`,
          },
          other: { concurrency: 1 },
        },
      }),
    );
    await d.createService({
      Name: service,
      TaskTemplate: { ContainerSpec: { Image: image, Command: ['sleep', '3600'] } },
      Mode: { Replicated: { Replicas: 1 } },
      Labels: { 'airtasks.test': 'autoscale' },
    });
    env = {
      AIRTASKS_DATABASE_URL: DATABASE_URL,
      AIRTASKS_BROKER_URL: BROKER_URL,
      AIRTASKS_DB_SCHEMA: db.schema,
      AIRTASKS_QUEUE_PREFIX: prefix,
    };
  });

  after(async () => {
    await d
      ?.getService(service)
      .remove()
      .catch(() => undefined);
    await broker?.deleteQueues(['q']);
    await broker?.close();
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const replicas = async () =>
    ((await d.getService(service).inspect()) as { Spec: { Mode: { Replicated: { Replicas: number } } } }).Spec
      .Mode.Replicated.Replicas;
  const once = async (args: string[], extra: NodeJS.ProcessEnv = {}, code = 0) => {
    const r = await runCli(['autoscale', '--once', '--json', ...args], { ...env, ...extra }, 60_000, {
      cwd: dir,
    });
    expect(r.code, r.stdout + r.stderr).to.equal(code);
    return JSON.parse(r.stdout) as {
      stack: string;
      dryRun: boolean;
      queues: Array<Record<string, unknown> & { nodes: { desired: number; hook: string } | null }>;
    };
  };

  it('prints the decisions without acting under --dry-run, then acts without it', async () => {
    await broker.publish(
      Array.from({ length: 7 }, (_, i) => ({
        queue: 'q',
        priority: 1,
        body: { runId: 'r', taskId: `t${i}`, tryNumber: 1 },
      })),
    );
    const dry = await once(['--dry-run']);
    expect(dry).to.deep.include({ stack, dryRun: true });
    expect(dry.queues).to.have.length(1); // "other" has no max: not autoscaled
    expect(dry.queues[0]).to.deep.include({
      queue: 'q',
      service,
      inputs: { ready: 7, unacked: null, running: 0 },
      backlog: 7,
      action: 'up',
      current: 1,
      wanted: 3,
      target: 3,
      scaled: false,
      nodes: { desired: 3, hook: 'dry-run', error: null },
    });
    expect(await replicas()).to.equal(1);
    expect(existsSync(path.join(dir, 'hook.log'))).to.equal(false);

    const act = await once([]);
    expect(act.queues[0]).to.deep.include({ action: 'up', current: 1, target: 3, scaled: true });
    expect(act.queues[0]!.nodes).to.deep.include({ desired: 3, hook: 'ran' });
    expect(await replicas()).to.equal(3);
    expect(await readFile(path.join(dir, 'hook.log'), 'utf8')).to.equal('q=3\n');
  });

  it('keeps the size when the broker or the database cannot be read', async () => {
    const r = await once([], { AIRTASKS_BROKER_URL: 'amqp://guest:guest@127.0.0.1:1' }, 4); // printed, exit 4
    expect(r.queues[0]).to.deep.include({ action: 'read-failed', current: 3, target: 3, scaled: false });
    expect(String(r.queues[0]!.reason)).to.match(/^keeping 3: broker unreachable/);
    // Worded as every command words it: which service, where, what to check.
    expect(String(r.queues[0]!.reason)).to.include(
      'Cannot reach the broker at amqp://guest:***@127.0.0.1:1 (connection refused)',
    );
    const noDb = await once([], { AIRTASKS_DB_SCHEMA: 'no_such_schema' }, 4);
    expect(noDb.queues[0]).to.deep.include({ action: 'read-failed', current: 3, target: 3, scaled: false });
    expect(String(noDb.queues[0]!.reason)).to.match(/^keeping 3: database read failed: .*does not exist/);
    expect(await replicas()).to.equal(3);
    // A URL that can never work stops it before any pass (exit 2), naming the flag.
    const swapped = (await once([], { AIRTASKS_BROKER_URL: 'postgres://u@127.0.0.1/db' }, 2)) as unknown as {
      error: { message: string };
    };
    expect(swapped.error.message).to.include('--broker-url must start with amqp:// or amqps://');
  });

  it('scales down to min once the backlog is gone (cooldown 0s)', async () => {
    await broker.deleteQueues(['q']);
    const r = await once([]);
    expect(r.queues[0]).to.deep.include({ action: 'down', current: 3, target: 1, backlog: 0, scaled: true });
    expect(await replicas()).to.equal(1);
  });

  it('refuses bad settings with exit code 2', async () => {
    const bad = await runCli(['autoscale', '--once', '--queues', 'other'], env, 30_000, { cwd: dir });
    expect(bad.code).to.equal(2);
    expect(bad.stderr.replace(/\s*›\s*|\s+/g, ' '))
      .to.include('queues.other in')
      .and.include('has no "max"');
  });
});

describe('autoscale: a project with no autoscaled queue', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-autoscale-idle-'));
    // A freshly scaffolded project: queues without a "max".
    await writeFile(
      path.join(dir, 'airtasks.json'),
      JSON.stringify({ stackName: 'idle', queues: { worker: { concurrency: 2 } } }),
    );
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('idles until stopped instead of exiting (a swarm service would restart it forever)', async () => {
    const daemon = new Daemon(
      ['autoscale', '--interval', '200ms'],
      { AIRTASKS_DATABASE_URL: DATABASE_URL },
      {
        cwd: dir,
      },
    );
    try {
      await daemon.waitFor('nothing to autoscale');
      const exited = await Promise.race([daemon.exited, sleep(2000).then(() => 'running')]);
      expect(exited, daemon.output).to.equal('running');
      expect(await daemon.stop('SIGTERM'), daemon.output).to.equal(0);
    } finally {
      await daemon.stop('SIGKILL');
    }
  });
});
