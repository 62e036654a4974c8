/**
 * The autoscaler on this machine's one-node swarm: a worker service `<stack>_worker-q` (the locally
 * built base image running this checkout's CLI from a bind mount, host networking) starts at min;
 * a run of N slow node tasks on queue q makes `airtasks autoscale` raise it to max, every task ends,
 * and after the cooldown it falls back to min. Each task appends a start and an end line to a ledger
 * on a host bind mount: exactly one of each per task means none was lost or run twice (scaling down
 * stops surplus workers with SIGTERM, and they drain: the first task a scaled-up worker takes outlasts
 * the others, so the scale-down comes while it runs on a surplus replica).
 */
import { expect } from 'chai';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import { Daemon, ROOT, runCli } from '../helpers/cli.js';
import { swarmQueueFixture } from '../helpers/autoscale.js';
import { sleep } from '../helpers/engine.js';
import { BROKER_URL, DATABASE_URL, type freshDb, uniqueName } from '../helpers/env.js';

const TASKS = 7;
const TASK_MS = 3000;
/** One task outlasts the others: the scale-down after their end finds it running, so a worker drains. */
const LONG_MS = 25_000;
const MIN = 1;
const MAX = 3;

describe('e2e: autoscale a swarm worker service to the backlog and back', function () {
  this.timeout(180_000);
  let d: Docker;
  let db: Awaited<ReturnType<typeof freshDb>>;
  let dir: string;
  let stack: string;
  let service: string;
  let env: NodeJS.ProcessEnv;
  const daemons: Daemon[] = [];

  before(async function () {
    let image: string;
    ({ d, image, db, stack, service } = await swarmQueueFixture(this));
    // Inside the repository, so the DAG file's `import 'airtasks'` resolves to this package.
    dir = path.join(ROOT, 'test', '.tmp', stack);
    await mkdir(path.join(dir, 'dags'), { recursive: true });
    const ledger = path.join(dir, 'ledger');
    await writeFile(
      path.join(dir, 'dags', 'slow.ts'),
      `import { appendFileSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { dag } from 'airtasks';
// Imported once per worker process: tells the workers (containers) apart in the ledger.
const worker = randomUUID();
/** True for the first caller across all workers (the file is created exclusively). */
const once = (name: string) => {
  try {
    writeFileSync(${JSON.stringify(dir)} + '/' + name, worker, { flag: 'wx' });
    return true;
  } catch {
    return false;
  }
};
// The worker that was there before the scale-up (it imports this file first) keeps short tasks; the
// first task a scaled-up worker takes is the long one, so the scale-down finds it on a surplus replica.
// (The scheduler's DAG processor imports this file too: only worker processes count.)
const original = process.argv.includes('worker') && once('original-worker');
// Set when swarm stopped this worker (a scale-down) while it ran a task: that task then ended by drain.
let stopping = false;
process.once('SIGTERM', () => (stopping = true));
export const slow = dag('slow_fanout', { defaults: { queue: 'q' } });
for (let i = 0; i < ${TASKS}; i++)
  slow.node('t' + i, {
    run: async (ctx) => {
      const line = (what: string) => appendFileSync(${JSON.stringify(ledger)}, [what, ctx.runId, ctx.taskId, ctx.tryNumber, worker].join(' ') + '\\n');
      line('start');
      const long = !original && once('long-task');
      await new Promise((r) => setTimeout(r, long ? ${LONG_MS} : ${TASK_MS}));
      line(stopping ? 'end-drained' : 'end');
      return ctx.taskId;
    },
  });
`,
    );
    await writeFile(
      path.join(dir, 'airtasks.json'),
      JSON.stringify({
        dagsFolder: 'dags',
        stackName: stack,
        queues: { q: { concurrency: 1, min: MIN, max: MAX, cooldown: '4s' } },
      }),
    );
    env = {
      AIRTASKS_DATABASE_URL: DATABASE_URL,
      AIRTASKS_BROKER_URL: BROKER_URL,
      AIRTASKS_DB_SCHEMA: db.schema,
      AIRTASKS_QUEUE_PREFIX: uniqueName('as'),
      AIRTASKS_DAGS_FOLDER: path.join(dir, 'dags'),
    };
    // What the stack's worker-<queue> service is, minus the image build: same CLI, same command.
    await d.createService({
      Name: service,
      Labels: { 'io.airtasks.component': 'worker', 'io.airtasks.queue': 'q' },
      TaskTemplate: {
        ContainerSpec: {
          Image: image,
          // exec: the worker is the container's main process and gets swarm's SIGTERM itself; its log
          // goes to a file of its own in the test folder (the containers of a scale-down are removed).
          Command: ['sh', '-c'],
          Args: [
            `exec node ${path.join(ROOT, 'bin/run.js')} worker -q q -c 1 --grace 40 --gpus none ` +
              `--heartbeat-interval 1000 2>> ${dir}/worker-$(cat /proc/sys/kernel/random/uuid).log`,
          ],
          Env: Object.entries({ ...env, AIRTASKS_LOG_FORMAT: 'json' }).map(([k, v]) => `${k}=${v}`),
          Mounts: [{ Type: 'bind', Source: ROOT, Target: ROOT }],
          // Longer than the worker's --grace: a surplus worker drains before swarm would kill it.
          StopGracePeriod: 50e9,
        },
        Networks: [{ Target: 'host' }],
        RestartPolicy: { Condition: 'on-failure' },
      },
      Mode: { Replicated: { Replicas: MIN } },
    });
  });

  after(async () => {
    for (const x of daemons.reverse()) await x.stop();
    await d
      ?.getService(service)
      .remove()
      .catch(() => undefined);
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The last lines of each worker's log, for failure messages. */
  const workerLogs = async () => {
    const files = (await readdir(dir)).filter((f) => f.startsWith('worker-'));
    const tails = await Promise.all(
      files.map(async (f) => `--- ${f}\n${(await readFile(path.join(dir, f), 'utf8')).slice(-3000)}`),
    );
    return tails.join('\n');
  };

  const replicas = async () =>
    ((await d.getService(service).inspect()) as { Spec: { Mode: { Replicated: { Replicas: number } } } }).Spec
      .Mode.Replicated.Replicas;

  it('rises to max, runs every task once, falls back to min after the cooldown', async () => {
    const scheduler = new Daemon(['scheduler', '--scan-interval', '500'], env, { cwd: dir });
    daemons.push(scheduler);
    await scheduler.waitFor('slow_fanout', 30_000).catch(() => undefined);
    const autoscaler = new Daemon(['autoscale', '--interval', '1s', '--log-level', 'debug'], env, {
      cwd: dir,
    });
    daemons.push(autoscaler);
    await autoscaler.waitFor('autoscaler started', 30_000);

    // The scheduler registers the DAG; then one run queues TASKS tasks on q.
    let trig = await runCli(['trigger', 'dag', 'slow_fanout', '--json'], env, 30_000, { cwd: dir });
    for (let i = 0; trig.code === 3 && i < 40; i++) {
      await sleep(500);
      trig = await runCli(['trigger', 'dag', 'slow_fanout', '--json'], env, 30_000, { cwd: dir });
    }
    expect(trig.code, trig.stdout + trig.stderr).to.equal(0);
    const runId = (JSON.parse(trig.stdout) as { runId: string }).runId;

    let peak = 0;
    let done = false;
    const end = Date.now() + 120_000;
    const states = async () =>
      (
        await db.query<{ task_id: string; state: string; try_number: number }>(
          'SELECT task_id, state, try_number FROM task_instances WHERE run_id = $1 ORDER BY task_id',
          [runId],
        )
      ).rows;
    while (!done || (await replicas()) !== MIN) {
      peak = Math.max(peak, await replicas());
      const rows = await states();
      done = rows.length === TASKS && rows.every((r) => r.state === 'success');
      if (Date.now() > end)
        throw new Error(
          `peak ${peak}, replicas ${await replicas()}, tasks ${JSON.stringify(rows)}\n` +
            autoscaler.output.slice(-4000),
        );
      await sleep(250);
    }
    expect(peak, autoscaler.output.slice(-4000)).to.equal(MAX);
    const rows = await states();
    const tries = await db.query(
      'SELECT task_id, try_number, state, worker_id, error FROM task_tries WHERE run_id = $1',
      [runId],
    );
    const ledger = (await readFile(path.join(dir, 'ledger'), 'utf8')).trim().split('\n');
    expect(
      rows.map((r) => [r.state, r.try_number]),
      `${JSON.stringify(tries.rows, null, 1)}\n${ledger.join('\n')}\n${scheduler.output.slice(-3000)}\n` +
        (await workerLogs()),
    ).to.deep.equal(Array(TASKS).fill(['success', 1]));

    // The autoscaler logged its decisions with their inputs.
    const decisions = autoscaler.output
      .split('\n')
      .filter((l) => l.includes('"action"'))
      .map((l) => JSON.parse(l) as { action: string; ready?: number; running?: number; target: number });
    expect(decisions.some((x) => x.action === 'up' && x.target === MAX)).to.equal(true);
    expect(decisions.some((x) => x.action === 'down' && x.target === MIN)).to.equal(true);
    expect(decisions.every((x) => x.action === 'read-failed' || typeof x.running === 'number')).to.equal(
      true,
    );
    // The scale-down came while the long task still ran: a stopped worker had to drain, not kill it.
    expect(decisions.some((x) => x.action === 'down' && (x.running ?? 0) > 0)).to.equal(true);

    // Exactly one start and one end per task: none lost, none run twice.
    const count = (what: string) =>
      Object.values(
        ledger
          .filter((l) => l.split(' ')[0]!.split('-')[0] === what)
          .reduce<Record<string, number>>(
            (m, l) => ({ ...m, [l.split(' ')[2]!]: (m[l.split(' ')[2]!] ?? 0) + 1 }),
            {},
          ),
      );
    expect(count('start'), ledger.join('\n')).to.deep.equal(Array(TASKS).fill(1));
    expect(count('end'), ledger.join('\n')).to.deep.equal(Array(TASKS).fill(1));
    // 'end' counts 'end-drained' too: the long task, finished by its worker after swarm stopped it. Which
    // replicas swarm stops is its choice (here it stopped the newest, so 'end-drained' showed in every
    // run tried), so it is not asserted; the counts above hold either way.
    // The work was spread over several workers (containers), as the scale-up meant.
    expect(new Set(ledger.map((l) => l.split(' ')[4])).size).to.be.greaterThan(1);

    // SIGTERM stops the autoscaler cleanly (the pass in progress ends, connections close).
    expect(await autoscaler.stop(), autoscaler.output.slice(-2000)).to.equal(0);
  });
});
