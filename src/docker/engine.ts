/**
 * The connection to a Docker engine. One Dockerode client per engine address, shared by every task
 * of the process (a client is only a configuration; each request opens its own connection).
 *
 *   connectDocker()                                   DOCKER_HOST, else the local socket
 *   connectDocker({ host: 'unix:///run/docker.sock' })
 *   connectDocker({ host: 'tcp://127.0.0.1:2375' })
 *   connectDocker({ socketPath: '/var/run/docker.sock' })
 */
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';

export type { default as Docker } from 'dockerode';

export interface DockerConnectionOptions {
  /** An engine address as in DOCKER_HOST: unix:///path, tcp://host:port, ssh://user@host, or a socket path. */
  host?: string;
  /** A Unix socket path; wins over `host`. */
  socketPath?: string;
}

const clients = new Map<string, Docker>();

/**
 * Dockerode (with its SSH and gRPC clients) is loaded on first use: a worker whose tasks never use docker,
 * and a scheduler, never pay its memory.
 */
let DockerClass: typeof Docker | null = null;
function dockerClass(): typeof Docker {
  DockerClass ??= createRequire(import.meta.url)('dockerode') as typeof Docker;
  return DockerClass;
}

/** A client for the engine at the given address (or DOCKER_HOST, or the default socket), cached per address. */
export function connectDocker(opts: DockerConnectionOptions = {}): Docker {
  const key = opts.socketPath ? `unix://${opts.socketPath}` : (opts.host ?? process.env.DOCKER_HOST ?? '');
  let client = clients.get(key);
  if (!client) {
    client = new (dockerClass())(connectionOptions(opts));
    clients.set(key, client);
  }
  return client;
}

/** Dockerode options for an address; undefined lets docker-modem read DOCKER_HOST / DOCKER_TLS_VERIFY itself. */
export function connectionOptions(opts: DockerConnectionOptions): Docker.DockerOptions | undefined {
  if (opts.socketPath) return { socketPath: opts.socketPath };
  const host = opts.host;
  if (!host) return undefined;
  if (host.startsWith('/')) return { socketPath: host };
  let url: URL;
  try {
    url = new URL(host);
  } catch {
    throw new Error(
      `invalid Docker host "${host}": use unix:///path/docker.sock, tcp://host:port or ssh://user@host`,
    );
  }
  switch (url.protocol) {
    case 'unix:':
      return { socketPath: url.pathname || '/var/run/docker.sock' };
    case 'tcp:':
    case 'http:':
    case 'https:': {
      const tls = url.protocol === 'https:' || url.port === '2376' || process.env.DOCKER_TLS_VERIFY === '1';
      return {
        host: url.hostname,
        port: Number(url.port || (tls ? 2376 : 2375)),
        protocol: tls ? 'https' : 'http',
      };
    }
    case 'ssh:':
      return {
        protocol: 'ssh',
        host: url.hostname,
        port: Number(url.port || 22),
        username: url.username || undefined,
      };
    default:
      throw new Error(`unsupported Docker host "${host}": use unix://, tcp:// or ssh://`);
  }
}

/** Whether the engine answers; never throws. */
export async function dockerReachable(docker: Docker, timeoutMs = 2000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      docker.ping(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), timeoutMs))),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** The engine's message from a dockerode error ("No such image: x", "Unknown runtime specified nvidia"). */
export function engineMessage(err: unknown): string {
  const e = err as {
    json?: { message?: string } | null;
    reason?: string;
    message?: string;
    statusCode?: number;
  };
  const fromJson = e?.json && typeof e.json === 'object' ? e.json.message : undefined;
  if (fromJson) return fromJson;
  const m = e?.message ?? String(err);
  // docker-modem formats "(HTTP code 500) server error - <engine message> "
  const i = m.indexOf(' - ');
  return (i >= 0 ? m.slice(i + 3) : m).trim();
}

/** The HTTP status of a dockerode error, when it has one. */
export function statusCode(err: unknown): number | undefined {
  return (err as { statusCode?: number })?.statusCode;
}

const CONNECTION_ERRORS = new Set([
  'ENOENT',
  'ECONNREFUSED',
  'EACCES',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ECONNRESET',
]);

/** A clear message when the engine cannot be reached at all; undefined for the engine's own errors. */
export function unreachableMessage(err: unknown, host?: string): string | undefined {
  const e = err as { code?: string; syscall?: string; address?: string; message?: string };
  if (!e || typeof e !== 'object' || !e.code || !CONNECTION_ERRORS.has(e.code)) return undefined;
  if (e.syscall !== 'connect' && e.syscall !== 'getaddrinfo') return undefined;
  const where =
    host ?? process.env.DOCKER_HOST ?? (e.address ? `unix://${e.address}` : 'unix:///var/run/docker.sock');
  return (
    `cannot reach the Docker engine at ${where} (${e.code}): start dockerd there, ` +
    `or point DOCKER_HOST (or the task's dockerHost) at a running engine`
  );
}

/** What every event of an engine progress stream (build, pull) may carry. */
export interface EngineEvent {
  error?: string;
  errorDetail?: { message?: string };
}

/** The events of an engine progress stream: one JSON object per line; blank and unparsable lines are skipped. */
export async function* engineEvents<T extends EngineEvent>(stream: Readable): AsyncGenerator<T> {
  for await (const raw of createInterface({ input: stream, crlfDelay: Infinity })) {
    const line = raw.trim();
    if (!line) continue;
    try {
      yield JSON.parse(line) as T;
    } catch {
      // A partial or non-JSON line: the engine's streams carry progress, nothing is lost by skipping it.
    }
  }
}

/** The error an engine event reports, if any. */
export function eventError(ev: EngineEvent): string | undefined {
  return ev.errorDetail?.message ?? ev.error;
}
