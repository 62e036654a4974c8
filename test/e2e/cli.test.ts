/**
 * End to end: `bin/run.js scheduler` and two `bin/run.js worker` processes on this machine's Postgres and
 * RabbitMQ, driven by `trigger dag --wait --json` as a CI script would, including a worker SIGKILLed
 * in the middle of a task and a worker drained by SIGTERM.
 */
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { Daemon, runCli, tempDagsFolder } from '../helpers/cli.js';
import { alive, hostsOf } from '../helpers/processes.js';
import { BROKER_URL, DATABASE_URL, deleteTestQueues, requireService, uniqueName } from '../helpers/env.js';

const DAGS = {
  'e2e.ts': `
import { dag } from 'airtasks';

export const basic = dag('e2e_basic', { defaults: { retries: 0 } });
const a = basic.bash('a', { command: 'echo "n={{ conf.n }}"' });
const fan = [1, 2, 3].map((i) => basic.bash('b' + i, { command: 'echo b' + i, upstream: a }));
basic.node('c', { upstream: fan, run: (ctx) => ({ from: ctx.output(fan[0]!), n: ctx.conf.n }) });

export const failing = dag('e2e_failing');
const bad = failing.bash('bad', { command: 'echo about to fail; exit 3' });
failing.bash('after_bad', { command: 'echo never', upstream: bad });

// Appends to a ledger when it starts and when it ends, so the test can see every execution.
export const slow = dag('e2e_slow');
slow.bash('slow_task', {
  command: 'echo "start {{ try_number }} {{ run_id }}" >> "$LEDGER"; sleep {{ conf.seconds }}; echo "end {{ try_number }} {{ run_id }}" >> "$LEDGER"',
  env: { LEDGER: process.env.E2E_LEDGER ?? '/dev/null' },
});
// A queue no worker consumes: the task waits, and \`airtasks status\` must say so.
export const orphan = dag('e2e_orphan_queue');
orphan.bash('waits', { command: 'true', queue: 'nobody_listens' });

slow.bash('after_slow', { command: 'echo after', upstream: slow.tasks.get('slow_task')! });
`,
};

describe('e2e: CLI with scheduler and workers as subprocesses', function () {
  this.timeout(120_000);
  const schema = uniqueName('e2e');
  const prefix = `${uniqueName('e2e')}.`;
  let env: NodeJS.ProcessEnv;
  let dags: Awaited<ReturnType<typeof tempDagsFolder>>;
  let ledger: string;
  let schedulers: Daemon[] = [];
  let workers: Daemon[] = [];
  let db: pg.Client;

  const startWorker = async (queues = 'worker') => {
    const w = new Daemon(
      ['worker', '-q', queues, '-c', '1', '--heartbeat-interval', '300', '--grace', '20'],
      env,
    );
    await w.waitFor('worker started');
    workers.push(w);
    return w;
  };

  before(async function () {
    await requireService(this, 'postgres');
    await requireService(this, 'rabbitmq');
    dags = await tempDagsFolder(DAGS);
    ledger = path.join(dags.dir, 'ledger.txt');
    env = {
      AIRTASKS_DATABASE_URL: DATABASE_URL,
      AIRTASKS_BROKER_URL: BROKER_URL,
      AIRTASKS_DB_SCHEMA: schema,
      AIRTASKS_QUEUE_PREFIX: prefix,
      AIRTASKS_DAGS_FOLDER: dags.dir,
      E2E_LEDGER: ledger,
    };
    const m = await runCli(['db', 'migrate'], env);
    expect(m.code, m.stderr).to.equal(0);
    // Two schedulers at once, as in an HA deployment.
    schedulers = [1, 2].map(
      () => new Daemon(['scheduler', '--zombie-threshold', '5', '--scan-interval', '200'], env),
    );
    // The DAGs are known once the folder is parsed (beside scheduling, after 'scheduler started').
    for (const s of schedulers) await s.waitFor('dags folder parsed');
    await startWorker();
    await startWorker();
    db = new pg.Client({ connectionString: DATABASE_URL });
    await db.connect();
  });

  after(async () => {
    for (const w of workers) await w.stop('SIGKILL');
    for (const s of schedulers) await s.stop();
    if (db) {
      await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await db.end();
    }
    await dags?.remove();
    if (env) await deleteTestQueues(prefix, ['worker', 'nobody_listens']);
  });

  const trigger = async (args: string[], timeoutMs?: number) => {
    const r = await runCli(['trigger', 'dag', ...args, '--json'], env, timeoutMs);
    return { ...r, json: r.stdout.trim() ? JSON.parse(r.stdout) : null };
  };

  it('runs a DAG to success and reports it as JSON, conf reaching the tasks', async () => {
    const r = await trigger(['e2e_basic', '--conf', '{"n": 3}', '--wait']);
    if (r.code !== 0) {
      const detail = await runCli(['runs', 'show', r.json?.runId ?? '?', '--json'], env);
      expect.fail(`exit ${r.code}: ${r.stderr}\n${detail.stdout}`);
    }
    expect(r.json).to.include({ dagId: 'e2e_basic', state: 'success' });
    expect(r.json.conf).to.deep.equal({ n: 3 });
    expect(r.json.tasks).to.have.length(5);
    for (const t of r.json.tasks) expect(t).to.include({ state: 'success', tryNumber: 1 });
    const show = await runCli(['runs', 'show', r.json.runId, '--json'], env);
    const c = JSON.parse(show.stdout).tasks.find((t: { taskId: string }) => t.taskId === 'c');
    expect(c.output).to.deep.equal({ from: 'b1', n: 3 });
    const logs = await runCli(['tasks', 'logs', r.json.runId, 'a'], env);
    expect(logs.stdout).to.include('n=3');
    // The try's header comes from its record: which worker ran it, and when.
    expect(logs.stdout).to.match(/^--- try 1 on worker \S+ \(started \d{4}-\d\d-\d\dT[\d:.]+Z\) ---$/m);
  });

  it('runs many runs at once with two schedulers, never dispatching a task twice', async () => {
    const results = await Promise.all(
      [...Array(6).keys()].map((n) => trigger(['e2e_basic', '--conf', `{"n": ${n}}`, '--wait'])),
    );
    for (const r of results) {
      expect(r.code, r.stderr).to.equal(0);
      for (const t of r.json.tasks) expect(t.state).to.equal('success');
      // A later try is legitimate only when the earlier one was lost (a worker that missed its heartbeats
      // on a loaded machine), never because a message was dispatched twice.
      if (r.json.tasks.some((t: { tryNumber: number }) => t.tryNumber > 1)) {
        const show = JSON.parse((await runCli(['runs', 'show', r.json.runId, '--json'], env)).stdout);
        for (const t of show.tasks as Array<{ tries: Array<{ state: string; error: string | null }> }>) {
          for (const earlier of t.tries.slice(0, -1)) expect(earlier.error).to.match(/lost/);
        }
      }
    }
    // A second message for a task would reach a worker and be logged as stale or duplicate.
    for (const w of workers) expect(w.output).to.not.include('stale or duplicate message');
    for (const w of workers) expect(w.output).to.include('task finished');
  });

  it('shows a queue nobody listens to in status, with its waiting task and a warning', async () => {
    const t = await runCli(['trigger', 'dag', 'e2e_orphan_queue'], env);
    expect(t.code, t.stderr).to.equal(0);
    let q: { queuedTasks: number; workers: number; depth: { ready: number } | null } | undefined;
    let status: { warnings: string[]; queues: Array<{ queue: string }> } | undefined;
    for (let i = 0; i < 100 && !q?.queuedTasks; i++) {
      const r = await runCli(['status', '--json'], env);
      expect(r.code, r.stderr).to.equal(0);
      status = JSON.parse(r.stdout);
      q = (status!.queues as Array<{ queue: string } & typeof q>).find((x) => x!.queue === 'nobody_listens');
      if (!q?.queuedTasks) await new Promise((res) => setTimeout(res, 100));
    }
    expect(q).to.deep.include({ queuedTasks: 1, workers: 0 });
    expect(q!.depth?.ready).to.equal(1);
    expect(status!.warnings.join('\n')).to.include(
      'queued on "nobody_listens", and no live worker consumes it',
    );
    const worker = status!.queues.find((x) => x.queue === 'worker') as unknown as { workers: number };
    expect(worker.workers).to.be.greaterThan(0);
  });

  it('exits 10 when the run fails, the failed task and its downstream recorded', async () => {
    const r = await trigger(['e2e_failing', '--wait']);
    expect(r.code).to.equal(10);
    expect(r.json.state).to.equal('failed');
    const states = Object.fromEntries(
      r.json.tasks.map((t: { taskId: string; state: string }) => [t.taskId, t.state]),
    );
    expect(states).to.deep.equal({ bad: 'failed', after_bad: 'upstream_failed' });
  });

  it('refuses malformed conf with exit 2 before writing anything', async () => {
    const before = await db.query(`SELECT count(*)::int AS n FROM "${schema}".dag_runs`);
    for (const conf of ['{"n": ', '[1,2]', '"text"', 'null']) {
      const r = await runCli(['trigger', 'dag', 'e2e_basic', '--conf', conf], env);
      expect(r.code, conf).to.equal(2);
      expect(r.stderr).to.match(/conf/);
    }
    const unknown = await runCli(['trigger', 'dag', 'no_such_dag'], env);
    expect(unknown.code).to.equal(3);
    expect(unknown.stderr).to.include('e2e_basic');
    const after = await db.query(`SELECT count(*)::int AS n FROM "${schema}".dag_runs`);
    expect(after.rows[0].n).to.equal(before.rows[0].n);
  });

  it('exits 12 when --wait --timeout runs out, and the run still finishes afterwards', async () => {
    const r = await trigger(['e2e_slow', '--conf', '{"seconds": 2}', '--wait', '--timeout', '1']);
    expect(r.code).to.equal(12);
    expect(r.json.state).to.be.oneOf(['queued', 'running']);
    for (let i = 0; i < 100; i++) {
      const s = await db.query(`SELECT state FROM "${schema}".dag_runs WHERE run_id = $1`, [r.json.runId]);
      if (s.rows[0].state === 'success') return;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error('the run did not finish after the wait timed out');
  });

  it('re-runs the task of a worker SIGKILLed mid-task, and the run succeeds', async () => {
    const readLedger = async () =>
      (await readFile(ledger, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    const ledgerBefore = (await readLedger()).length;
    const waiting = trigger(['e2e_slow', '--conf', '{"seconds": 3}', '--wait'], 90_000);
    // Kill mid-task: once the task has written its first ledger line.
    for (let i = 0; i < 200 && (await readLedger()).length === ledgerBefore; i++)
      await new Promise((res) => setTimeout(res, 50));
    const started = performance.now();
    const r0 = await db.query(
      `SELECT t.worker_id FROM "${schema}".task_instances t JOIN "${schema}".dag_runs r USING (run_id)
       WHERE r.dag_id = 'e2e_slow' AND r.state = 'running' AND t.task_id = 'slow_task' AND t.state = 'running'`,
    );
    const workerId: string | undefined = r0.rows[0]?.worker_id;
    expect(workerId, 'slow_task never started').to.be.a('string');
    const victim = workers.find((w) => workerId!.includes(`-${w.pid}-`));
    expect(victim, `no worker process for ${workerId}`).to.not.equal(undefined);
    const hosts = await hostsOf(victim!.pid);
    const killed = performance.now();
    await victim!.stop('SIGKILL');
    const gone = performance.now();
    workers = workers.filter((w) => w !== victim);
    // What a failure needs said (it happened once, in a CI run with other work on the machine): when the
    // kill came, how long the worker took to die, and whether its process host outlived it.
    await new Promise((res) => setTimeout(res, 500));
    const hostsLeft = (await Promise.all(hosts.map(alive))).filter(Boolean).length;
    const timing =
      `SIGKILL ${Math.round(killed - started)} ms after the first ledger line was seen, the worker gone ` +
      `${Math.round(gone - killed)} ms later; its process host(s) ${hosts.join(', ') || 'none'}, ` +
      `${hostsLeft} still running 500 ms after`;

    const r = await waiting;
    expect(r.code, r.stderr).to.equal(0);
    expect(r.json.state).to.equal('success');
    const slow = r.json.tasks.find((t: { taskId: string }) => t.taskId === 'slow_task');
    expect(slow).to.include({ state: 'success', tryNumber: 2 });
    // The killed try started and never ended; the second try ran exactly once, start to end.
    const lines = (await readLedger()).slice(ledgerBefore);
    expect(lines, timing).to.deep.equal([
      `start 1 ${r.json.runId}`,
      `start 2 ${r.json.runId}`,
      `end 2 ${r.json.runId}`,
    ]);
    const show = JSON.parse((await runCli(['runs', 'show', r.json.runId, '--json'], env)).stdout);
    const tries = show.tasks.find((t: { taskId: string }) => t.taskId === 'slow_task').tries;
    expect(tries.map((t: { state: string }) => t.state)).to.deep.equal(['failed', 'success']);
    expect(tries[0].error).to.match(/lost/);
  });

  /** Starts a lone worker and a run of e2e_slow; resolves once the worker runs slow_task. */
  const slowTaskOnLoneWorker = async (seconds: number) => {
    for (const w of workers) await w.stop();
    workers = [];
    const w = await startWorker();
    const waiting = trigger(['e2e_slow', '--conf', `{"seconds": ${seconds}}`, '--wait'], 60_000);
    for (let i = 0; i < 200; i++) {
      const r = await db.query(
        `SELECT 1 FROM "${schema}".task_instances WHERE task_id = 'slow_task' AND state = 'running' AND worker_id LIKE $1`,
        [`%-${w.pid}-%`],
      );
      if (r.rowCount) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    return { w, waiting };
  };

  /** slow_task of the latest run ended once, on its first try; then the run goes on to its end. */
  const expectSlowTaskRanOnce = async (waiting: ReturnType<typeof trigger>) => {
    const s = await db.query(
      `SELECT t.state, t.try_number FROM "${schema}".task_instances t JOIN "${schema}".dag_runs r USING (run_id)
       WHERE t.task_id = 'slow_task' ORDER BY r.created_at DESC LIMIT 1`,
    );
    expect(s.rows[0]).to.deep.equal({ state: 'success', try_number: 1 });
    await startWorker(); // after_slow still needs a worker
    const r = await waiting;
    expect(r.code, r.stderr).to.equal(0);
  };

  it('drains on SIGTERM: the running task finishes, then the worker exits 0', async () => {
    const { w, waiting } = await slowTaskOnLoneWorker(2);
    const code = await w.stop('SIGTERM');
    expect(code, w.output).to.equal(0);
    await expectSlowTaskRanOnce(waiting);
  });

  it('a repeated SIGTERM (swarm repeats it to a draining container) does not cut the drain short', async () => {
    const { w, waiting } = await slowTaskOnLoneWorker(3);
    w.child.kill('SIGTERM');
    await w.waitFor('finishing running work');
    w.child.kill('SIGTERM');
    await w.waitFor('SIGTERM again: still finishing running work');
    expect(await w.exited, w.output).to.equal(0);
    await expectSlowTaskRanOnce(waiting);
  });
});
