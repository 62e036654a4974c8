/** Runs the built CLI (bin/run.js) as a subprocess, as a user would. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { DATABASE_URL, uniqueName } from './env.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = path.join(ROOT, 'bin', 'run.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 60_000,
  opts: { cwd?: string; stdin?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      cwd: opts.cwd ?? ROOT,
    });
    child.stdin.end(opts.stdin ?? '');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`airtasks ${args.join(' ')} did not end within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-lived airtasks process (scheduler, worker) with its output kept for failure messages. */
export class Daemon {
  readonly child: ChildProcess;
  output = '';
  readonly exited: Promise<number | null>;

  /** `script`: a TypeScript file to run (with tsx) instead of the CLI. */
  constructor(args: string[], env: NodeJS.ProcessEnv, opts: { cwd?: string; script?: string } = {}) {
    const main = opts.script ? ['--import', 'tsx', opts.script] : [BIN];
    this.child = spawn(process.execPath, [...main, ...args], {
      env: { ...process.env, AIRTASKS_LOG_FORMAT: 'json', ...env },
      cwd: opts.cwd ?? ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves when a log line containing `text` has been printed. */
  async waitFor(text: string, timeoutMs = 20_000) {
    const end = Date.now() + timeoutMs;
    while (!this.output.includes(text)) {
      if (Date.now() > end) throw new Error(`no "${text}" within ${timeoutMs} ms; output:\n${this.output}`);
      if (this.child.exitCode !== null)
        throw new Error(`process exited (${this.child.exitCode}):\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

/**
 * A dags folder inside the repository, so that DAG files' `import ... from 'airtasks'` resolves to this
 * package (Node's package self-reference), as it does in a project that depends on airtasks.
 */
export async function tempDagsFolder(
  files: Record<string, string>,
): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = path.join(ROOT, 'test', '.tmp', uniqueName('dags'));
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * An e2e fixture: DAG files in a temporary folder, a schema of their own on this machine's Postgres
 * (migrated), the Postgres queue, and the daemons started for it; `remove()` stops the daemons (last
 * started first), drops the schema and the folder.
 */
export class E2eProject {
  readonly schema = uniqueName('e2e');
  readonly daemons: Daemon[] = [];
  env: NodeJS.ProcessEnv = {};
  private dags: { dir: string; remove(): Promise<void> } | undefined;
  private client: pg.Client | undefined;

  /** Call in before(), after requireService(this, 'postgres'). */
  async create(files: Record<string, string>, env: NodeJS.ProcessEnv = {}): Promise<this> {
    this.dags = await tempDagsFolder(files);
    this.env = {
      AIRTASKS_DATABASE_URL: DATABASE_URL,
      AIRTASKS_BROKER_URL: '', // the Postgres queue
      AIRTASKS_DB_SCHEMA: this.schema,
      AIRTASKS_DAGS_FOLDER: this.dags.dir,
      ...env,
    };
    const m = await runCli(['db', 'migrate'], this.env);
    if (m.code !== 0) throw new Error(`db migrate exited ${m.code}: ${m.stderr}`);
    return this;
  }

  /** Starts a daemon (`scheduler ...`, `worker ...`) and waits for its start line. */
  async start(args: string[], startedLine: string): Promise<Daemon> {
    const d = new Daemon(args, this.env);
    this.daemons.push(d);
    await d.waitFor(startedLine);
    return d;
  }

  /** A scheduler (scanning the folder every 200 ms) and a worker of queue `worker` with concurrency 2. */
  async startEngine(workerArgs: string[] = []): Promise<void> {
    // The scheduler parses the dags folder beside scheduling: wait for the DAGs the tests trigger.
    await this.start(['scheduler', '--scan-interval', '200'], 'dags folder parsed');
    await this.start(['worker', '-q', 'worker', '-c', '2', ...workerArgs], 'worker started');
  }

  /** A client on the project's database, for assertions (SQL names the schema: `${p.schema}.table`). */
  async db(): Promise<pg.Client> {
    if (!this.client) {
      this.client = new pg.Client({ connectionString: DATABASE_URL });
      await this.client.connect();
    }
    return this.client;
  }

  async remove(): Promise<void> {
    for (const d of [...this.daemons].reverse()) await d.stop();
    if (!this.dags) return; // skipped before create(): nothing was made
    const c = await this.db();
    await c.query(`DROP SCHEMA IF EXISTS "${this.schema}" CASCADE`);
    await c.end();
    await this.dags?.remove();
  }
}
