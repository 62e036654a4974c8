/**
 * The chaos harness: real `airtasks scheduler` and `airtasks worker` processes (bin/run.js, the built
 * CLI) on this machine's Postgres and RabbitMQ run many runs of a DAG shaped like the interleaved example
 * while faults hit them at seeded random moments: workers and schedulers SIGKILLed and restarted, their
 * Postgres connections terminated, their RabbitMQ connections closed, queued messages purged, their main
 * thread blocked by synchronous work (hold.ts). Every bash task appends a start line and an end line (run,
 * task, try, worker, its own clock) to a ledger; afterwards the ledger is checked against the store
 * (verdict.ts): each successful try finished exactly once, nothing lost or run twice, no two tries of a
 * task at the same time.
 * Faults only ever touch this harness's own processes and connections (names prefixed with `name`). Half
 * the runs are inserted queued for the schedulers, half triggered as `airtasks trigger` triggers them.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import amqp from 'amqplib';
import pg from 'pg';
import { Daemon, runCli, tempDagsFolder } from '../helpers/cli.js';
import { BROKER_URL, DATABASE_URL, uniqueName } from '../helpers/env.js';
import { triggerDag } from '../../src/services/trigger.js';
import {
  closeBrokerConnections,
  ledgerCommand,
  parseLedger,
  rabbitmqctlWorks,
  seededRandom,
  terminateDbConnections,
} from '../helpers/faults.js';
import { blockHoldingWorker, HOLD_DAG, holdDagFile } from './hold.js';
import type { ChaosReport, FaultKind } from './report.js';
import { storeRows, verdict } from './verdict.js';

export { formatReport, type ChaosReport, type FaultKind } from './report.js';

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

/** Seconds without a heartbeat before the suite's schedulers declare a worker lost. */
const ZOMBIE_THRESHOLD_S = 3;
/** worker_block: how long a worker's main thread is blocked, and how long the bash task it runs takes. */
const BLOCK_MS = (ZOMBIE_THRESHOLD_S + 3) * 1000;
const HOLD_S = BLOCK_MS / 1000 + 2;

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
  await writeFile(path.join(dags.dir, 'hold.ts'), holdDagFile(ledger, HOLD_S));
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
    worker_block: 0,
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
      {
        ...env,
        AIRTASKS_CONNECTION_NAME: `${name}-w${i}`,
        // worker_block opens the inspector with SIGUSR1: on a port of its own, never one another test holds.
        NODE_OPTIONS: [process.env.NODE_OPTIONS, '--inspect-port=0'].filter(Boolean).join(' '),
      },
    );
  const startScheduler = (i: number) =>
    new Daemon(
      [
        'scheduler',
        '--zombie-threshold',
        String(ZOMBIE_THRESHOLD_S),
        '--scan-interval',
        '1000',
        '--requeue-after',
        '3',
      ],
      {
        ...env,
        AIRTASKS_CONNECTION_NAME: `${name}-s${i}`,
      },
    );
  let stopFaults = false;
  let faultLoop: Promise<void> = Promise.resolve();
  try {
    const m = await runCli(['db', 'migrate'], env);
    if (m.code !== 0) throw new Error(`db migrate failed: ${m.stderr}`);
    for (let i = 0; i < o.schedulers; i++) schedulers.push(startScheduler(i));
    for (let i = 0; i < o.workers; i++) workers.push(startWorker(i));
    const hashOf = (dagId: string) =>
      waitUntil(
        async () => {
          const r = await db.query<{ hash: string }>(`SELECT hash FROM "${schema}".dags WHERE dag_id = $1`, [
            dagId,
          ]);
          return r.rows[0]?.hash;
        },
        60_000,
        () => `DAG ${dagId} to be parsed:\n` + schedulers.map((s) => s?.output).join('\n'),
      );
    const dagHash = await hashOf('chaos_interleaved');
    const holdHash = await hashOf(HOLD_DAG);
    const startRun = async (dagId: string, hash: string, runId: string) => {
      await db.query(
        `INSERT INTO "${schema}".dag_runs (run_id, dag_id, dag_hash, state, conf) VALUES ($1, $2, $3, 'queued', '{}')`,
        [runId, dagId, hash],
      );
      await db.query(`SELECT pg_notify($1, $2)`, [`airtasks_${schema}_events`, `run:${runId}`]);
    };
    const triggerRun = async (runId: string) => {
      const conn = {
        databaseUrl: DATABASE_URL,
        schema,
        ...(o.broker === 'rabbitmq' ? { brokerUrl: BROKER_URL, queuePrefix: prefix } : {}),
        connectionName: `${name}-trigger`,
        cwd: dags.dir,
      };
      // Its connection is one the faults may terminate: tried again until the run exists.
      for (let attempt = 1; ; attempt++) {
        try {
          await triggerDag({ ...conn, dagId: 'chaos_interleaved', runId });
          return;
        } catch (err) {
          const exists = await db.query(`SELECT 1 FROM "${schema}".dag_runs WHERE run_id = $1`, [runId]);
          if (exists.rowCount) return;
          if (attempt >= 20) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    };
    const holdRuns: string[] = [];
    log(
      `seed ${o.seed}: ${o.runs} runs, ${o.workers} workers x ${o.workerConcurrency}, ${o.schedulers} schedulers, ${o.broker}`,
    );

    // Faults at seeded random moments, until every run is over.
    const kinds: FaultKind[] = [
      'worker_kill',
      'scheduler_kill',
      'db_terminate',
      'queue_purge',
      'worker_block',
    ];
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
      } else if (kind === 'worker_block') {
        const runId = await blockHoldingWorker({
          db,
          schema,
          startRun: (id) => startRun(HOLD_DAG, holdHash, id),
          workers,
          blockMs: BLOCK_MS,
        });
        holdRuns.push(runId);
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
        // Every other run as `airtasks trigger` makes it: started where it is created, its first message
        // sent by a scheduler told of it (or by the trigger, on the Postgres queue), faults or not.
        if (runIds.length % 2 === 1) await triggerRun(runId);
        else await startRun('chaos_interleaved', dagHash, runId);
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
    // The worker_block fault's runs end a few seconds after their fault.
    await waitUntil(
      async () => {
        const r = await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM "${schema}".dag_runs WHERE run_id = ANY($1) AND state IN ('queued','running')`,
          [holdRuns],
        );
        return r.rows[0]!.n === 0 || Date.now() > deadline ? true : undefined;
      },
      60_000,
      () => 'the worker_block runs to end',
    );

    // The verdict, from the store and the ledger.
    const rows = await storeRows(db, schema);
    const v = verdict(rows, parseLedger(await readFile(ledger, 'utf8')));
    const chaosRuns = rows.runs.filter((r) => r.dag_id === 'chaos_interleaved');
    if (v.problems.length > 0) problems.push(...v.problems);
    return {
      seed: o.seed,
      broker: o.broker,
      runs: chaosRuns.length,
      runsSucceeded: chaosRuns.filter((r) => r.state === 'success').length,
      tasks: rows.tis.filter((t) => t.dag_id === 'chaos_interleaved').length,
      faults,
      ...v,
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
