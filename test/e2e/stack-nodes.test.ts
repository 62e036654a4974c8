/**
 * The whole stack on a swarm of two nodes, as a user deploys it (README, "Packaging and deploying";
 * docs/deploy.md, "More than one node"): init -> build --tag 1.0.0 -> secrets create -> nodes label
 * (the queue `worker` on the manager, `gpu` on the second node only) -> deploy --swarm. The swarm is
 * the test's own (test/helpers/swarm-nodes.ts: two namespaced Docker engines on a bridge, the
 * machine's engine and its one-node swarm left alone); the images are copied into its engines, as a
 * registry would deliver them. Shows:
 *   - placement: postgres, rabbitmq, the scheduler, the autoscaler, web and the proxy on the manager, the
 *     gpu queue's workers on the second node, and the gpu tasks ran there (each reports its container,
 *     found among the containers the second node's engine started for that service);
 *   - the autoscaler grows that worker service to its max for a backlog, all on the second node, and
 *     shrinks it back to min;
 *   - draining the second node mid-run loses no task: its workers finish what they run and leave, the
 *     rest waits (no other node may run the queue), and when the node is active again the run succeeds
 *     with every task successful once.
 * The gpu tasks hold until a file the test makes exists (in the node's /tmp, which the stack mounts
 * into workers), so the test, not timing, decides when they end.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { runCli } from '../helpers/cli.js';
import { BASE_IMAGE, ensureBaseImage, requireDocker } from '../helpers/docker.js';
import { installAirtasks, scaffoldTestProject, type TestProject } from '../helpers/project.js';
import { eventually, requireStackImages, type StackImageKey } from '../helpers/stack.js';
import { requireNamespaces, startTwoNodeSwarm, type TwoNodeSwarm } from '../helpers/swarm-nodes.js';

const run = promisify(execFile);

const TASKS = 6;
const MAX = 3;

const NODES_DAGS = `import { existsSync } from 'node:fs';
import os from 'node:os';
import { dag } from 'airtasks';

/**
 * Tasks on the gpu queue that say where they ran: their container (its host name), which the test finds
 * among the containers each node's engine started (task code runs as the image's airtasks user, which may
 * not use the Docker socket, so it cannot ask the engine itself). Each holds (up to 3 minutes) until the file named by
 * the run's conf "gate" exists: the node's /tmp is the worker's (the stack mounts it).
 */
export const fanout = dag<{ gate?: string }>('e2e_gpu_fanout', { defaults: { queue: 'gpu', retries: 0 } });
for (let i = 0; i < ${TASKS}; i++)
  fanout.node(\`t\${i}\`, {
    run: async (ctx) => {
      ctx.log(\`container \${os.hostname()}\`);
      const end = Date.now() + 180_000;
      // Stopped by its worker (drained past its grace): it ends too, leaving the worker free to exit.
      while (ctx.conf.gate && !existsSync(ctx.conf.gate) && Date.now() < end && !ctx.signal.aborted)
        await new Promise((r) => setTimeout(r, 200));
      return { container: os.hostname() };
    },
  });
`;

const STACK_SERVICES = [
  'postgres',
  'rabbitmq',
  'scheduler',
  'worker-worker',
  'worker-gpu',
  'autoscaler',
  'web',
  'proxy',
];

interface RunDetail {
  runId: string;
  state: string;
  tasks: Array<{
    taskId: string;
    state: string;
    tryNumber: number;
    output: { container?: string } | null;
    tries: Array<{ tryNumber: number; state: string; workerId: string | null }>;
  }>;
}

interface SwarmTask {
  ID: string;
  NodeID?: string;
  DesiredState?: string;
  Status?: { State?: string; Err?: string; ContainerStatus?: { ContainerID?: string } };
}

describe('e2e: the stack on a two-node swarm (placement by node labels, autoscaling, drain)', function () {
  this.timeout(900_000);
  let swarm: TwoNodeSwarm | undefined;
  let images: Record<StackImageKey, string>;
  let project: TestProject | undefined;
  let host: Docker;
  let cwd: string;
  let stack: string;
  let image: string;
  const gates: string[] = [];
  const gate = () => {
    const g = path.join(os.tmpdir(), `airtasks-nodes-gate-${randomBytes(4).toString('hex')}`);
    gates.push(g);
    return g;
  };

  // Commands go to the test swarm's manager; no database here: they run in the stack's scheduler.
  const cli = (args: string[], timeoutMs = 120_000, stdin?: string) =>
    runCli(
      args,
      { AIRTASKS_DATABASE_URL: '', AIRTASKS_DATABASE_URL_FILE: '', DOCKER_HOST: swarm!.manager.dockerHost },
      timeoutMs,
      { cwd, ...(stdin !== undefined ? { stdin } : {}) },
    );
  const json = async <T>(args: string[], timeoutMs?: number): Promise<T> => {
    const r = await cli([...args, '--json'], timeoutMs);
    expect(r.code, `airtasks ${args.join(' ')}: ${r.stdout}${r.stderr}`).to.equal(0);
    return JSON.parse(r.stdout) as T;
  };
  const mgr = () => swarm!.manager.docker;
  const tasksOf = async (service: string): Promise<SwarmTask[]> =>
    (await mgr().listTasks({ filters: { service: [`${stack}_${service}`] } })) as SwarmTask[];
  const running = (ts: SwarmTask[]) =>
    ts.filter((t) => t.DesiredState === 'running' && t.Status?.State === 'running');
  const replicas = async (service: string) =>
    (await mgr().getService(`${stack}_${service}`).inspect()).Spec?.Mode?.Replicated?.Replicas as number;
  const nodeName = (id: string | undefined) =>
    id === swarm!.manager.nodeId ? 'manager' : id === swarm!.worker.nodeId ? 'worker' : `${id ?? '-'}`;
  const describeSwarm = async () => {
    const ps = await run('docker', [
      '-H',
      swarm!.manager.dockerHost,
      'stack',
      'ps',
      stack,
      '--no-trunc',
      '--format',
      '{{.Name}} {{.Node}} {{.CurrentState}} {{.Error}}',
    ]).catch((e: Error) => ({ stdout: e.message }));
    const autoscaler = await run('docker', [
      '-H',
      swarm!.manager.dockerHost,
      'service',
      'logs',
      '--raw',
      '--tail',
      '20',
      `${stack}_autoscaler`,
    ]).catch((e: { stdout?: string; stderr?: string }) => e);
    return `${ps.stdout}\nautoscaler:\n${autoscaler.stdout ?? ''}${autoscaler.stderr ?? ''}`;
  };
  const runShow = (runId: string) => json<RunDetail>(['runs', 'show', runId]);
  const trigger = async (g: string) =>
    (
      await json<{ runId: string }>([
        'trigger',
        'dag',
        'e2e_gpu_fanout',
        '--conf',
        JSON.stringify({ gate: g }),
      ])
    ).runId;
  const ended = (runId: string) =>
    eventually(
      `run ${runId} to end`,
      async () => {
        const r = await runShow(runId);
        return ['success', 'failed', 'cancelled'].includes(r.state) ? r : undefined;
      },
      300_000,
      describeSwarm,
    );
  /**
   * The gpu workers' containers each node's engine started, from its event stream: swarm removes the tasks
   * (and containers) of the slots the autoscaler takes away, so the service's task list forgets them.
   */
  const started = { manager: new Set<string>(), worker: new Set<string>() };
  const watches: Array<NodeJS.ReadableStream & { destroy?: () => void }> = [];
  const watchStarts = async (node: keyof typeof started) => {
    const events = await swarm![node].docker.getEvents({
      filters: {
        type: ['container'],
        event: ['start'],
        label: [`com.docker.swarm.service.name=${stack}_worker-gpu`],
      },
    });
    watches.push(events);
    let rest = '';
    events.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines.filter((l) => l.trim())) {
        const e = JSON.parse(line) as { id?: string; Actor?: { ID?: string } };
        started[node].add((e.Actor?.ID ?? e.id ?? '').slice(0, 12));
      }
    });
  };
  /** Every task successful once, on the second node (in a container its engine started). */
  const expectRanOnSecondNode = async (r: RunDetail) => {
    expect(r.state, JSON.stringify(r.tasks)).to.equal('success');
    expect(r.tasks).to.have.length(TASKS);
    expect([...started.manager], 'gpu workers started on the manager').to.deep.equal([]);
    for (const t of r.tasks) {
      expect(t.state, t.taskId).to.equal('success');
      expect(
        t.tries.filter((x) => x.state === 'success'),
        JSON.stringify(t),
      ).to.have.length(1);
      expect(t.tryNumber, JSON.stringify(t)).to.be.at.most(2);
      expect(started.worker, `${t.taskId}'s container ${t.output?.container}`).to.include(
        t.output?.container,
      );
    }
    return new Set(r.tasks.map((t) => t.output!.container));
  };

  before(async function () {
    host = await requireDocker(this);
    await requireNamespaces(this);
    images = await requireStackImages(this);
    await ensureBaseImage();
    project = await scaffoldTestProject(['--queues', 'worker:1,gpu:1']);
    cwd = project.dir;
    stack = project.name;
    image = `airtasks-test/${project.name}`;
    await writeFile(path.join(cwd, 'dags', 'e2e_nodes.ts'), NODES_DAGS);
    const cfgFile = path.join(cwd, 'airtasks.json');
    const cfg = JSON.parse(await readFile(cfgFile, 'utf8')) as { queues: Record<string, object> };
    // What a user changes: the images (no registry here), and the gpu queue autoscaled (a short cooldown).
    const queues = { ...cfg.queues, gpu: { ...cfg.queues.gpu, min: 1, max: MAX, cooldown: '5s' } };
    await writeFile(cfgFile, JSON.stringify({ ...cfg, image, images, queues }, null, 2));
    await installAirtasks(cwd);

    swarm = await startTwoNodeSwarm();
    await Promise.all([watchStarts('manager'), watchStarts('worker')]);
    // The stand-ins go to the manager (postgres, rabbitmq, proxy run there) while the project image builds
    // on this machine's engine, as a user builds before pushing.
    const standIns = swarm.copyImages(Object.values(images), [swarm.manager]);
    const b = await runCli(
      ['build', '--tag', '1.0.0', '--build-arg', `BASE_IMAGE=${BASE_IMAGE}`, '--json'],
      {},
      600_000,
      {
        cwd,
      },
    );
    expect(b.code, b.stderr).to.equal(0);
    await Promise.all([standIns, swarm.copyImages([`${image}:1.0.0`], [swarm.manager, swarm.worker])]);
  });

  after(async () => {
    for (const w of watches) w.destroy?.();
    for (const g of gates) await rm(g, { force: true });
    // The engines, their containers, volumes and images, the namespaces, bridge and rule.
    await swarm?.remove();
    await host
      ?.getImage(`${image}:1.0.0`)
      .remove({ force: true })
      .catch(() => undefined);
    await project?.remove();
  });

  it('deploys with postgres, rabbitmq and the rest on the manager, the gpu workers on the second node', async () => {
    const secrets: Record<string, string> = {
      postgres_password: `pg-${randomBytes(6).toString('hex')}`,
      rabbitmq_password: `mq-${randomBytes(6).toString('hex')}`,
      airtasks_secret_key: 'c3'.repeat(32),
    };
    await Promise.all([
      ...Object.entries(secrets).map(([name, value]) => cli(['secrets', 'create', name], 180_000, value)),
      ...['basic_auth_username', 'basic_auth_password', 'ssl_certificate', 'ssl_certificate_key'].map(
        (name) => cli(['secrets', 'create', name, '--file', '/dev/null'], 180_000),
      ),
    ]).then((rs) => rs.forEach((r) => expect(r.code, r.stderr).to.equal(0)));
    const self = await json<{ hostname: string; queues: string[] }>([
      'nodes',
      'label',
      'self',
      '-q',
      'worker',
    ]);
    expect(self).to.include({ hostname: swarm!.manager.hostname });
    const second = await json<{ id: string; queues: string[] }>([
      'nodes',
      'label',
      swarm!.worker.hostname,
      '-q',
      'gpu',
    ]);
    expect(second.id).to.equal(swarm!.worker.nodeId);
    expect(second.queues).to.deep.equal(['gpu']);

    const dep = await json<{ services: string[] }>(['deploy', '--swarm'], 180_000);
    expect(dep.services).to.have.members(STACK_SERVICES);
    const placement = await eventually(
      `every service of ${stack} running`,
      async () => {
        const where: Record<string, string[]> = {};
        for (const s of STACK_SERVICES) where[s] = running(await tasksOf(s)).map((t) => nodeName(t.NodeID));
        return Object.values(where).every((w) => w.length === 1) ? where : undefined;
      },
      300_000,
      describeSwarm,
    );
    expect(placement).to.deep.equal({
      postgres: ['manager'],
      rabbitmq: ['manager'],
      scheduler: ['manager'],
      'worker-worker': ['manager'],
      'worker-gpu': ['worker'],
      autoscaler: ['manager'],
      web: ['manager'],
      proxy: ['manager'],
    });
    // Reached from the project folder through the manager: both queues have a worker.
    await eventually(
      'both queues with a worker in status',
      async () => {
        const s = await json<{ queues: Array<{ queue: string; workers: number | null }> }>(['status']);
        return s.queues.length === 2 && s.queues.every((q) => q.workers === 1) ? s : undefined;
      },
      180_000,
      describeSwarm,
    );
  });

  it("runs the gpu queue's tasks on the second node only, and the autoscaler grows and shrinks its workers", async () => {
    await eventually('the DAG, parsed by the deployed scheduler', async () => {
      const l = await cli(['dags', 'list', '--json']);
      return l.code === 0 && l.stdout.includes('"e2e_gpu_fanout"') ? true : undefined;
    });
    const g = gate();
    const runId = await trigger(g);
    // A backlog of 6 for workers of concurrency 1: the autoscaler asks for its max, and all of them hold
    // a task at once, so every one took work; swarm put each on the only node labelled for the queue.
    await eventually(
      `${MAX} gpu workers, each running a task`,
      async () => {
        const r = await runShow(runId);
        const ts = running(await tasksOf('worker-gpu'));
        return r.tasks.filter((t) => t.state === 'running').length === MAX &&
          (await replicas('worker-gpu')) === MAX &&
          ts.length === MAX
          ? ts
          : undefined;
      },
      240_000,
      describeSwarm,
    ).then((ts) => expect(ts.map((t) => nodeName(t.NodeID))).to.deep.equal(Array(MAX).fill('worker')));
    await writeFile(g, '');
    const containers = await expectRanOnSecondNode(await ended(runId));
    expect(containers.size, [...containers].join(' ')).to.be.at.least(MAX);
    // No backlog: back to min after the cooldown (the surplus workers drain and leave).
    await eventually(
      'the gpu workers back to 1',
      async () =>
        (await replicas('worker-gpu')) === 1 && running(await tasksOf('worker-gpu')).length === 1
          ? true
          : undefined,
      180_000,
      describeSwarm,
    );
    for (const s of ['postgres', 'rabbitmq'])
      expect(
        running(await tasksOf(s)).map((t) => nodeName(t.NodeID)),
        s,
      ).to.deep.equal(['manager']);
  });

  it('drains the second node mid-run without losing a task', async () => {
    const g = gate();
    const runId = await trigger(g);
    await eventually('a gpu task running', async () =>
      (await runShow(runId)).tasks.some((t) => t.state === 'running') ? true : undefined,
    );
    const node = (availability: string) =>
      run('docker', [
        '-H',
        swarm!.manager.dockerHost,
        'node',
        'update',
        '--availability',
        availability,
        swarm!.worker.nodeId,
      ]);
    await node('drain');
    const gpuContainers = (d: Docker) =>
      d.listContainers({ filters: { label: [`com.docker.swarm.service.name=${stack}_worker-gpu`] } });
    // Swarm stops the node's workers with SIGTERM: each says so, then takes no new task; the tasks they
    // hold then end (the gate opens).
    const workerLogs = async () => {
      const list = await gpuContainers(swarm!.worker.docker);
      return Promise.all(
        list.map(async (c) =>
          String(
            await swarm!.worker.docker.getContainer(c.Id).logs({ stdout: true, stderr: true, follow: false }),
          ),
        ),
      );
    };
    await eventually(
      "the drained node's workers stopping",
      async () => ((await workerLogs()).every((l) => l.includes('"worker stopping"')) ? true : undefined),
      60_000,
      async () =>
        `${await describeSwarm()}\n${(await workerLogs()).map((l) => l.slice(-3000)).join('\n---\n')}`,
    );
    await writeFile(g, '');
    await eventually(
      'the drained workers gone',
      async () => ((await gpuContainers(swarm!.worker.docker)).length === 0 ? true : undefined),
      180_000,
      describeSwarm,
    );
    // Nothing else may run the queue: its workers wait for a node (pending), the rest of the run waits.
    expect(await gpuContainers(swarm!.manager.docker)).to.have.length(0);
    // (A replacement swarm cannot place yet is desired "ready", once placed "running".)
    const waiting = (await tasksOf('worker-gpu')).filter((t) =>
      ['ready', 'running'].includes(t.DesiredState ?? ''),
    );
    expect(waiting.length, JSON.stringify(waiting)).to.be.at.least(1);
    for (const t of waiting) expect(t.Status?.State, JSON.stringify(t)).to.equal('pending');
    const midway = await runShow(runId);
    expect(midway.state).to.equal('running');
    const held = midway.tasks.filter((t) => t.state === 'success');
    expect(held.length, JSON.stringify(midway.tasks)).to.be.within(1, TASKS - 1);

    await node('active');
    const r = await ended(runId);
    await expectRanOnSecondNode(r);
  });
});
