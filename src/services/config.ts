/**
 * Where things are: the project (nearest airtasks.json upwards), its dags folder, and the database and
 * broker to use. Precedence: explicit option (flag or env var) > a running `airtasks standalone` of this
 * project > nothing (an error that says what to do).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  AirtasksError,
  ExitCode,
  NotConfiguredError,
  UnavailableError,
  ValidationError,
} from '../core/errors.js';

export interface ProjectConfig {
  /** Relative to the project root. */
  dagsFolder: string;
  /** New DAGs start paused (env AIRTASKS_DAGS_PAUSED_ON_CREATION wins); default false. */
  pausedOnCreation?: boolean;
  /** Per queue: worker concurrency and the autoscaler's settings (see services/autoscale/config.ts). */
  queues: Record<
    string,
    {
      concurrency?: number;
      min?: number;
      max?: number;
      cooldown?: string | number;
      nodeGroupHook?: string;
      workersPerNode?: number;
      service?: string;
    }
  >;
  [key: string]: unknown;
}

export interface Project {
  root: string;
  configFile: string | null;
  config: ProjectConfig;
}

export interface ConnectionOptions {
  databaseUrl?: string;
  brokerUrl?: string;
  schema?: string;
  queuePrefix?: string;
  dagsFolder?: string;
  /**
   * Names this process's Postgres (application_name) and RabbitMQ (connection_name) connections, so an
   * operator (or a test) can find and act on exactly them. Default: AIRTASKS_CONNECTION_NAME, else 'airtasks'.
   */
  connectionName?: string;
  /**
   * How long connecting to the database or the broker may take, handshake included, before it fails
   * (default: AIRTASKS_CONNECT_TIMEOUT seconds, else 10 s).
   */
  connectTimeoutMs?: number;
  /** Start looking for the project here (default: cwd). */
  cwd?: string;
  /**
   * An engine already open (a long-lived reader such as the web server): service calls use its pool and
   * broker instead of opening and closing their own, and leave it open.
   */
  engine?: import('./engine.js').Engine;
}

export interface Connection {
  databaseUrl: string;
  brokerUrl: string | undefined;
  schema: string;
  queuePrefix: string;
  dagsFolder: string;
  connectionName: string;
  connectTimeoutMs: number;
  project: Project;
  /** Where the database URL came from, for messages. */
  source: 'option' | 'standalone';
}

export const CONFIG_FILE = 'airtasks.json';

export function findProject(cwd = process.cwd()): Project {
  let dir = path.resolve(cwd);
  for (;;) {
    const file = path.join(dir, CONFIG_FILE);
    if (existsSync(file)) {
      let parsed: Partial<ProjectConfig>;
      try {
        parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<ProjectConfig>;
      } catch (err) {
        throw new AirtasksError(`${file} is not valid JSON: ${(err as Error).message}`, ExitCode.USAGE);
      }
      return { root: dir, configFile: file, config: { dagsFolder: 'dags', queues: {}, ...parsed } };
    }
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return { root: path.resolve(cwd), configFile: null, config: { dagsFolder: 'dags', queues: {} } };
}

/** The project itself, or a usage error saying what it is needed for (`why`) when there is none. */
export function requireProject(project: Project, why: string): Project & { configFile: string } {
  if (project.configFile === null)
    throw new AirtasksError(`no ${CONFIG_FILE} here or above: ${why}`, ExitCode.USAGE);
  return { ...project, configFile: project.configFile };
}

/** The name of the project's stack: given, else airtasks.json's stackName, else the folder's name. */
export function stackName(project: Project, given: string | undefined): string {
  const configured = project.config.stackName;
  const stack =
    given ?? (typeof configured === 'string' && configured ? configured : path.basename(project.root));
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(stack))
    throw new ValidationError('stack', 'malformed', `invalid stack name "${stack}"`, { value: stack });
  return stack;
}

export interface StandaloneState {
  pid: number;
  databaseUrl: string;
  schema: string;
  startedAt: string;
}

export function standaloneStateFile(project: Project): string {
  return path.join(project.root, '.airtasks', 'standalone.json');
}

/** The state of this project's running standalone, or null if none runs. */
export function runningStandalone(project: Project): StandaloneState | null {
  const file = standaloneStateFile(project);
  if (!existsSync(file)) return null;
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as StandaloneState;
    process.kill(s.pid, 0);
    return s;
  } catch {
    return null;
  }
}

/** Whether a database is configured here (so commands connect themselves and never go through a stack). */
export function databaseConfigured(o: ConnectionOptions, env: NodeJS.ProcessEnv = process.env): boolean {
  return !!(o.databaseUrl || env.AIRTASKS_DATABASE_URL_FILE || runningStandalone(findProject(o.cwd)));
}

export function resolveDagsFolder(opts: ConnectionOptions, project = findProject(opts.cwd)): string {
  return path.resolve(project.root, opts.dagsFolder ?? project.config.dagsFolder);
}

const TRUE = ['1', 'true', 'yes', 'on'];
const FALSE = ['0', 'false', 'no', 'off'];

/** Whether DAGs seen for the first time start paused: env AIRTASKS_DAGS_PAUSED_ON_CREATION, then airtasks.json, else false. */
export function resolvePausedOnCreation(project: Project, env: NodeJS.ProcessEnv = process.env): boolean {
  const e = env.AIRTASKS_DAGS_PAUSED_ON_CREATION?.trim().toLowerCase();
  if (e) {
    if (TRUE.includes(e)) return true;
    if (FALSE.includes(e)) return false;
    throw new AirtasksError(
      `AIRTASKS_DAGS_PAUSED_ON_CREATION must be true or false, got "${env.AIRTASKS_DAGS_PAUSED_ON_CREATION}"`,
      ExitCode.USAGE,
    );
  }
  const c = project.config.pausedOnCreation;
  if (c === undefined) return false;
  if (typeof c !== 'boolean') {
    throw new AirtasksError(
      `"pausedOnCreation" in ${project.configFile ?? CONFIG_FILE} must be true or false`,
      ExitCode.USAGE,
    );
  }
  return c;
}

/**
 * Secrets as files (Docker secrets, `*_FILE` style): AIRTASKS_DATABASE_URL_FILE / AIRTASKS_BROKER_URL_FILE
 * hold a whole URL; AIRTASKS_DATABASE_PASSWORD_FILE / AIRTASKS_BROKER_PASSWORD_FILE a password put
 * into the URL given otherwise. The files' content never appears in messages.
 */
export function applySecretFiles(
  opts: ConnectionOptions,
  env: NodeJS.ProcessEnv = process.env,
): ConnectionOptions {
  const fromFile = (name: string): string | undefined => {
    const file = env[name];
    if (!file) return undefined;
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new UnavailableError(
        'secret',
        `${name} names ${file}, which cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}): ` +
          'create the secret or fix the path',
      );
    }
  };
  const withPassword = (url: string | undefined, name: string): string | undefined => {
    const password = fromFile(name);
    if (!url || password === undefined) return url;
    try {
      const u = new URL(url);
      u.password = encodeURIComponent(password);
      return u.toString();
    } catch {
      throw new AirtasksError(`${name} is set but the URL it belongs to is not a valid URL`, ExitCode.USAGE);
    }
  };
  const databaseUrl = opts.databaseUrl || fromFile('AIRTASKS_DATABASE_URL_FILE');
  const brokerUrl = opts.brokerUrl || fromFile('AIRTASKS_BROKER_URL_FILE');
  return {
    ...opts,
    databaseUrl: withPassword(databaseUrl, 'AIRTASKS_DATABASE_PASSWORD_FILE'),
    brokerUrl: withPassword(brokerUrl, 'AIRTASKS_BROKER_PASSWORD_FILE'),
  };
}

const CONNECTION_NAME = /^[A-Za-z0-9_.-]{1,50}$/;

export function resolveConnectionName(given = process.env.AIRTASKS_CONNECTION_NAME): string {
  const name = given || 'airtasks';
  if (!CONNECTION_NAME.test(name))
    throw new AirtasksError(
      `invalid connection name "${name}" (AIRTASKS_CONNECTION_NAME): use 1-50 letters, digits and _ . -`,
      ExitCode.USAGE,
    );
  return name;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** The connect timeout: given, else AIRTASKS_CONNECT_TIMEOUT (seconds), else 10 s. */
export function resolveConnectTimeout(given?: number, env: NodeJS.ProcessEnv = process.env): number {
  if (given !== undefined) return given;
  const text = env.AIRTASKS_CONNECT_TIMEOUT?.trim();
  if (!text) return DEFAULT_CONNECT_TIMEOUT_MS;
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600)
    throw new ValidationError(
      'connectTimeoutMs',
      'out-of-range',
      `AIRTASKS_CONNECT_TIMEOUT must be a number of seconds above 0 and at most 3600, got "${text}"`,
      { value: text },
    );
  return Math.round(seconds * 1000);
}

export function resolveConnection(input: ConnectionOptions): Connection {
  const opts = applySecretFiles(input);
  const project = findProject(opts.cwd);
  const dagsFolder = resolveDagsFolder(opts, project);
  const base = {
    brokerUrl: opts.brokerUrl || undefined,
    queuePrefix: opts.queuePrefix ?? '',
    dagsFolder,
    connectionName: resolveConnectionName(opts.connectionName),
    connectTimeoutMs: resolveConnectTimeout(opts.connectTimeoutMs),
    project,
  };
  if (opts.databaseUrl) {
    return { ...base, databaseUrl: opts.databaseUrl, schema: opts.schema ?? 'airtasks', source: 'option' };
  }
  const sa = runningStandalone(project);
  if (sa)
    return { ...base, databaseUrl: sa.databaseUrl, schema: opts.schema ?? sa.schema, source: 'standalone' };
  throw new NotConfiguredError(
    'databaseUrl',
    (name) =>
      `No database configured: pass ${name}, set AIRTASKS_DATABASE_URL, or start \`airtasks standalone\` in this project.`,
  );
}
