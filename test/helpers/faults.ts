/**
 * Fault injection on this machine's real services, aimed at one test's own connections only: Postgres
 * backends are picked by application_name prefix, RabbitMQ connections by their connection_name client
 * property (both set with AIRTASKS_CONNECTION_NAME / the connectionName options). Never anyone else's.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { DATABASE_URL } from './env.js';

const run = promisify(execFile);

/** Terminates the Postgres backends whose application_name starts with `prefix`; returns how many. */
export async function terminateDbConnections(prefix: string): Promise<number> {
  if (prefix.length < 8) throw new Error(`refusing a short connection-name prefix "${prefix}"`);
  const c = new pg.Client({ connectionString: DATABASE_URL, application_name: 'airtasks-test-faults' });
  await c.connect();
  try {
    const r = await c.query<{ ok: boolean }>(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
       WHERE left(application_name, length($1)) = $1 AND datname = current_database() AND pid <> pg_backend_pid()`,
      [prefix],
    );
    return r.rows.filter((x) => x.ok).length;
  } finally {
    await c.end();
  }
}

/** RabbitMQ connection ids (`<rabbit@host.N.N.N>`) whose connection_name starts with `prefix`. */
export async function brokerConnections(prefix: string): Promise<string[]> {
  const { stdout } = await run('rabbitmqctl', [
    'list_connections',
    'pid',
    'client_properties',
    '-q',
    '--no-table-headers',
  ]);
  const out: string[] = [];
  for (const line of stdout.split('\n')) {
    const [pid, props] = line.split('\t');
    const name = /\{"connection_name","([^"]*)"\}/.exec(props ?? '')?.[1];
    if (pid && name?.startsWith(prefix)) out.push(pid.trim());
  }
  return out;
}

/** Closes the RabbitMQ connections whose connection_name starts with `prefix`; returns how many. */
export async function closeBrokerConnections(prefix: string): Promise<number> {
  if (prefix.length < 8) throw new Error(`refusing a short connection-name prefix "${prefix}"`);
  let closed = 0;
  for (const pid of await brokerConnections(prefix)) {
    // A connection that closed by itself meanwhile is not an error.
    await run('rabbitmqctl', ['close_connection', pid, 'airtasks fault injection']).then(
      () => closed++,
      () => undefined,
    );
  }
  return closed;
}

export async function rabbitmqctlWorks(): Promise<boolean> {
  return run('rabbitmqctl', ['list_connections', 'pid', '-q', '--no-table-headers']).then(
    () => true,
    () => false,
  );
}

/** A small seeded PRNG (mulberry32): the same seed replays the same choices. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One parsed ledger line: S at the start of an execution, E at its end, K when it was stopped (SIGTERM; a
 * SIGKILLed one has neither E nor K). `atUs`: when, by the task's own clock (microseconds since 1970).
 */
export interface LedgerEntry {
  kind: 'S' | 'E' | 'K';
  runId: string;
  taskId: string;
  tryNumber: number;
  workerId: string;
  atUs: number | null;
}

/**
 * The bash command that wraps a task's work with ledger lines (each one short write with O_APPEND: atomic),
 * each with the time by the task's own clock.
 */
export function ledgerCommand(ledgerPath: string, work: string): string {
  const line = (k: string) =>
    `echo "${k} {{ run_id }} {{ task_id }} {{ try_number }} $AIRTASKS_WORKER_ID $(date +%s%N)" >> "$L"`;
  // The trap reads the try from the environment: the template's values are not for a trap's string.
  const stopped =
    'echo "K $AIRTASKS_RUN_ID $AIRTASKS_TASK_ID $AIRTASKS_TRY_NUMBER $AIRTASKS_WORKER_ID $(date +%s%N)" >> "$L"';
  return `L='${ledgerPath}'; trap '${stopped}; exit 143' TERM; ${line('S')}; ${work}; ${line('E')}`;
}

export function parseLedger(text: string): LedgerEntry[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const [kind, runId, taskId, tryNumber, workerId, ns] = l.trim().split(/\s+/);
      return {
        kind: kind as 'S' | 'E' | 'K',
        runId: runId!,
        taskId: taskId!,
        tryNumber: Number(tryNumber),
        workerId: workerId ?? '',
        atUs: ns && /^\d+$/.test(ns) ? Number(BigInt(ns) / 1000n) : null,
      };
    });
}
