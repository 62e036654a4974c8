/**
 * The chaos harness: real `airtasks scheduler` and `airtasks worker` processes (bin/run.js, the built
 * CLI) on this machine's Postgres and RabbitMQ run many runs of a DAG shaped like the interleaved example
 * while faults hit them at seeded random moments: workers and schedulers SIGKILLed and restarted, their
 * Postgres connections terminated, their RabbitMQ connections closed, queued messages purged. Every bash
 * task appends a start line and an end line (run, task, try, worker) to a ledger; afterwards the ledger
 * is checked against the store: each successful try finished exactly once, nothing lost or run twice.
 * Faults only ever touch this harness's own processes and connections (names prefixed with `name`).
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import amqp from 'amqplib';
import pg from 'pg';
import { Daemon, runCli, tempDagsFolder } from '../helpers/cli.js';
import { BROKER_URL, DATABASE_URL, uniqueName } from '../helpers/env.js';
import {
  closeBrokerConnections,
  ledgerCommand,
  parseLedger,
  rabbitmqctlWorks,
  seededRandom,
  terminateDbConnections,
} from '../helpers/faults.js';

export type FaultKind = 'worker_kill' | 'scheduler_kill' | 'db_terminate' | 'broker_close' | 'queue_purge';

export interface ChaosOptions {
  runs: number;
  /** Runs in flight at once. */
  parallelRuns: number;
  seed: number;
  workers: number;
  workerConcurrency: number;
  schedulers: number;
  broker: 'rabbitmq' | 'postgres';
  /** Pause between two faults, drawn uniformly from [min, max] ms. */
  faultGapMs: [number, number];
  timeoutMs: number;
  /**
   * The last run starts only after this many full rounds of faults (every kind once per round), so even
   * a short suite on a fast machine sees every kind while runs are in flight. Default 0.
   */
  minFaultRounds?: number;
  log?: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  broker: string;
  runs: number;
  runsSucceeded: number;
  tasks: number;
  faults: Record<FaultKind, number>;
  executionsStarted: number;
  executionsFinished: number;
  /** Executions killed mid-way (a start line without an end line). */
  executionsKilled: number;
  /** Finished executions of tries the store did not record as success (work redone after a fault). */
  reExecutions: number;
  /** Tries lost with a worker or connection (run again without counting against retries). */
  lostTries: number;
  /** Messages re-sent because they were lost. */
  requeues: number;
  /** Successful tries without a finished execution in the ledger: must be 0. */
  lost: number;
  /** Tries with more than one start or end line: must be 0. */
  duplicated: number;
  /** Tries that failed for another reason than a lost worker/connection: must be 0. */
  taskFailures: number;
  /** Task instances left queued or running: must be 0. */
  stuck: number;
  seconds: number;
  problems: string[];
}

const WIDTH = 5;

function dagFile(ledger: string): string {
  // The interleaved example's shape: begin -> 5 dates -> 5 hellos -> 5 prints -> end (17 bash tasks).
  const cmd = ledgerCommand(ledger, 'sleep 0.$((RANDOM % 3))$((RANDOM % 10))');
  return `import { dag } from 'airtasks';
const W = ${WIDTH};
const r = (n) => [...Array(n).keys()];
const cmd = ${JSON.stringify(cmd)};
export const chaos = dag('chaos_interleaved', { defaults: { retries: 1, retryDelay: '1s' } });
const begin = chaos.bash('begin_task', { command: cmd });
const dates = r(W).map((i) => chaos.bash('print_date_' + i, { command: cmd, upstream: begin }));
const hellos = r(W).map((i) => chaos.bash('print_hello_' + i, { command: cmd, upstream: i === 0 ? [dates[0]] : [dates[i - 1], dates[i]] }));
const prints = r(W).map((i) => chaos.bash('bash_print_' + i, { command: cmd, upstream: i === 0 ? [hellos[0]] : [hellos[i - 1], hellos[i]] }));
chaos.bash('end_task', { command: cmd, upstream: prints });
`;
}

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log ?? (() => undefined);
  const rnd = seededRandom(o.seed);
  const started = Date.now();
  const name = uniqueName('chaos'); // connection-name prefix of every process of this harness
  const schema = uniqueName('chaos');
  const prefix = `${uniqueName('chaos')}.`;
  const dags = await tempDagsFolder({});
  const ledger = path.join(dags.dir, 'ledger.txt');
  await writeFile(ledger, '');
  await writeFile(path.join(dags.dir, 'chaos.ts'), dagFile(ledger));
  const env: NodeJS.ProcessEnv = {
    AIRTASKS_DATABASE_URL: DATABASE_URL,
    AIRTASKS_DB_SCHEMA: schema,
    AIRTASKS_DAGS_FOLDER: dags.dir,
    AIRTASKS_LOG_LEVEL: 'warn',
    ...(o.broker === 'rabbitmq' ? { AIRTASKS_BROKER_URL: BROKER_URL, AIRTASKS_QUEUE_PREFIX: prefix } : {}),
  };
  const canCloseBroker = o.broker === 'rabbitmq' && (await rabbitmqctlWorks());
  const db = new pg.Client({ connectionString: DATABASE_URL, application_name: 'airtasks-chaos-harness' });
  await db.connect();
  const faults: Record<FaultKind, number> = {
    worker_kill: 0,
    scheduler_kill: 0,
    db_terminate: 0,
    broker_close: 0,
    queue_purge: 0,
  };
  const workers: Array<Daemon | null> = [];
  const schedulers: Array<Daemon | null> = [];
  const problems: string[] = [];
  const startWorker = (i: number) =>
    new Daemon(
      [
        'worker',
        '-q',
        'worker',
        '-c',
        String(o.workerConcurrency),
        '--heartbeat-interval',
        '300',
        '--grace',
        '2',
      ],
      { ...env, AIRTASKS_CONNECTION_NAME: `${name}-w${i}` },
    );
  const startScheduler = (i: number) =>
    new Daemon(['scheduler', '--zombie-threshold', '3', '--scan-interval', '1000', '--requeue-after', '3'], {
      ...env,
      AIRTASKS_CONNECTION_NAME: `${name}-s${i}`,
    });
  let stopFaults = false;
  let faultLoop: Promise<void> = Promise.resolve();
  try {
    const m = await runCli(['db', 'migrate'], env);
    if (m.code !== 0) throw new Error(`db migrate failed: ${m.stderr}`);
    for (let i = 0; i < o.schedulers; i++) schedulers.push(startScheduler(i));
    for (let i = 0; i < o.workers; i++) workers.push(startWorker(i));
    const dagHash = await waitUntil(
      async () => {
        const r = await db.query<{ hash: string }>(
          `SELECT hash FROM "${schema}".dags WHERE dag_id = 'chaos_interleaved'`,
        );
        return r.rows[0]?.hash;
      },
      60_000,
      () => 'the chaos DAG to be parsed:\n' + schedulers.map((s) => s?.output).join('\n'),
    );
    log(
      `seed ${o.seed}: ${o.runs} runs, ${o.workers} workers x ${o.workerConcurrency}, ${o.schedulers} schedulers, ${o.broker}`,
    );

    // Faults at seeded random moments, until every run is over.
    const kinds: FaultKind[] = ['worker_kill', 'scheduler_kill', 'db_terminate', 'queue_purge'];
    if (canCloseBroker) kinds.push('broker_close');
    let round: FaultKind[] = [];
    const shuffle = <T>(xs: T[]): T[] => {
      const a = [...xs];
      for (let i = a.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [a[i], a[j]] = [a[j]!, a[i]!];
      }
      return a;
    };
    faultLoop = (async () => {
      while (!stopFaults) {
        const [lo, hi] = o.faultGapMs;
        await sleep(lo + rnd() * (hi - lo));
        if (stopFaults) break;
        // Every kind once per round, in a seeded random order: even a short run covers them all.
        if (round.length === 0) round = shuffle(kinds);
        const kind = round.pop()!;
        try {
          await inject(kind);
          faults[kind]++;
        } catch (err) {
          problems.push(`fault ${kind} could not be injected: ${(err as Error).message}`);
        }
      }
    })();

    async function inject(kind: FaultKind) {
      if (kind === 'worker_kill' || kind === 'scheduler_kill') {
        const list = kind === 'worker_kill' ? workers : schedulers;
        const i = Math.floor(rnd() * list.length);
        const d = list[i];
        if (!d) return;
        list[i] = null;
        await d.stop('SIGKILL');
        const downMs = rnd() * 1500;
        void sleep(downMs).then(() => {
          if (!stopFaults) list[i] = kind === 'worker_kill' ? startWorker(i) : startScheduler(i);
        });
      } else if (kind === 'db_terminate') {
        await terminateDbConnections(name);
      } else if (kind === 'broker_close') {
        await closeBrokerConnections(name);
      } else if (o.broker === 'rabbitmq') {
        const c = await amqp.connect(BROKER_URL);
        try {
          const ch = await c.createChannel();
          await ch.purgeQueue(`${prefix}worker`).catch(() => undefined);
        } finally {
          await c.close();
        }
      } else {
        await db.query(`DELETE FROM "${schema}".queue_messages`);
      }
    }

    // Keep parallelRuns runs in flight until o.runs were started and all are over.
    const runIds: string[] = [];
    const active = new Set<string>();
    const deadline = started + o.timeoutMs;
    while (runIds.length < o.runs || active.size > 0) {
      const injected = Object.values(faults).reduce((a, b) => a + b, 0);
      const lastRunMayStart = injected >= (o.minFaultRounds ?? 0) * kinds.length;
      while (
        runIds.length < o.runs &&
        active.size < o.parallelRuns &&
        (runIds.length < o.runs - 1 || lastRunMayStart)
      ) {
        const runId = `chaos_${String(runIds.length).padStart(4, '0')}_${uniqueName('r')}`;
        await db.query(
          `INSERT INTO "${schema}".dag_runs (run_id, dag_id, dag_hash, state, conf) VALUES ($1, 'chaos_interleaved', $2, 'queued', '{}')`,
          [runId, dagHash],
        );
        await db.query(`SELECT pg_notify($1, $2)`, [`airtasks_${schema}_events`, `run:${runId}`]);
        runIds.push(runId);
        active.add(runId);
      }
      const r = await db.query<{ run_id: string; state: string }>(
        `SELECT run_id, state FROM "${schema}".dag_runs WHERE run_id = ANY($1) AND state NOT IN ('queued','running')`,
        [[...active]],
      );
      for (const x of r.rows) {
        active.delete(x.run_id);
        if (runIds.length % 20 === 0 || active.size === 0)
          log(`${runIds.length - active.size}/${o.runs} runs over`);
      }
      if (Date.now() > deadline) {
        problems.push(`timed out with ${active.size} run(s) not over: ${[...active].slice(0, 5).join(', ')}`);
        break;
      }
      await sleep(200);
    }
    stopFaults = true;
    await faultLoop;

    // The verdict, from the store and the ledger.
    const q = async <R extends pg.QueryResultRow>(sql: string) => (await db.query<R>(sql)).rows;
    const runsRows = await q<{ run_id: string; state: string }>(
      `SELECT run_id, state FROM "${schema}".dag_runs`,
    );
    const tis = await q<{
      run_id: string;
      task_id: string;
      state: string;
      try_number: number;
      lost_tries: number;
      requeues: number;
    }>(`SELECT run_id, task_id, state, try_number, lost_tries, requeues FROM "${schema}".task_instances`);
    const tries = await q<{
      run_id: string;
      task_id: string;
      try_number: number;
      state: string;
      error: string | null;
    }>(`SELECT run_id, task_id, try_number, state, error FROM "${schema}".task_tries`);
    const entries = parseLedger(await readFile(ledger, 'utf8'));
    const count = new Map<string, { S: number; E: number }>();
    for (const e of entries) {
      const k = `${e.runId} ${e.taskId} ${e.tryNumber}`;
      const c = count.get(k) ?? { S: 0, E: 0 };
      c[e.kind]++;
      count.set(k, c);
    }
    const successTries = new Set(
      tis.filter((t) => t.state === 'success').map((t) => `${t.run_id} ${t.task_id} ${t.try_number}`),
    );
    let lost = 0;
    for (const k of successTries) {
      if ((count.get(k)?.E ?? 0) === 0) {
        lost++;
        problems.push(`lost: ${k} is a success in the store but never finished in the ledger`);
      }
    }
    let duplicated = 0;
    let reExecutions = 0;
    for (const [k, c] of count) {
      if (c.S > 1 || c.E > 1) {
        duplicated++;
        problems.push(`duplicated: ${k} started ${c.S}x, finished ${c.E}x`);
      }
      if (c.E > 0 && !successTries.has(k)) reExecutions += c.E;
    }
    const taskFailures = tries.filter((t) => t.state !== 'success' && !/lost/.test(t.error ?? ''));
    for (const t of taskFailures.slice(0, 10))
      problems.push(`task failure: ${t.run_id} ${t.task_id} try ${t.try_number}: ${t.error}`);
    const stuck = tis.filter((t) => t.state === 'queued' || t.state === 'running' || t.state === 'none');
    for (const t of stuck.slice(0, 10)) problems.push(`stuck: ${t.run_id} ${t.task_id} ${t.state}`);
    const failedRuns = runsRows.filter((r) => r.state !== 'success');
    for (const r of failedRuns.slice(0, 10)) problems.push(`run ${r.run_id} ended ${r.state}`);
    const started_ = entries.filter((e) => e.kind === 'S').length;
    const finished = entries.filter((e) => e.kind === 'E').length;
    return {
      seed: o.seed,
      broker: o.broker,
      runs: runsRows.length,
      runsSucceeded: runsRows.length - failedRuns.length,
      tasks: tis.length,
      faults,
      executionsStarted: started_,
      executionsFinished: finished,
      executionsKilled: [...count.values()].reduce((n, c) => n + Math.max(0, c.S - c.E), 0),
      reExecutions,
      lostTries: tis.reduce((n, t) => n + t.lost_tries, 0),
      requeues: tis.reduce((n, t) => n + t.requeues, 0),
      lost,
      duplicated,
      taskFailures: taskFailures.length,
      stuck: stuck.length,
      seconds: Math.round((Date.now() - started) / 1000),
      problems,
    };
  } finally {
    stopFaults = true;
    await faultLoop.catch(() => undefined);
    await Promise.all([...workers, ...schedulers].map((d) => d?.stop('SIGKILL')));
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await db.end().catch(() => undefined);
    if (o.broker === 'rabbitmq') {
      const c = await amqp.connect(BROKER_URL).catch(() => null);
      if (c) {
        const ch = await c.createChannel();
        await ch.deleteQueue(`${prefix}worker`).catch(() => undefined);
        await ch.deleteExchange(`${prefix}airtasks.tasks`).catch(() => undefined);
        await c.close().catch(() => undefined);
      }
    }
    await dags.remove();
  }
}

export function formatReport(r: ChaosReport): string {
  const f = Object.entries(r.faults)
    .map(([k, n]) => `${k}=${n}`)
    .join(' ');
  return [
    `seed ${r.seed} (${r.broker}): ${r.runsSucceeded}/${r.runs} runs succeeded, ${r.tasks} tasks, ${r.seconds}s`,
    `faults: ${f}`,
    `executions: ${r.executionsStarted} started, ${r.executionsFinished} finished, ${r.executionsKilled} killed mid-way, ${r.reExecutions} redone after a fault`,
    `lost tries re-run: ${r.lostTries}; lost messages re-sent: ${r.requeues}`,
    `lost: ${r.lost}; duplicated: ${r.duplicated}; task failures: ${r.taskFailures}; stuck: ${r.stuck}`,
    ...r.problems.slice(0, 20).map((p) => `problem: ${p}`),
  ].join('\n');
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitUntil<T>(
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  what: () => string,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`);
    await sleep(200);
  }
}
