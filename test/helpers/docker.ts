/**
 * Docker test helpers: a real engine (DOCKER_HOST or the local socket), the locally built base image,
 * an in-memory log sink, an OperatorContext for calling operators directly, and a fake registry on
 * loopback for pulls with credentials. Outside CI a missing engine skips the suite; in CI
 * (CI=true) it fails it, so nothing is silently skipped there.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import type Docker from 'dockerode';
import { findTaskContainers } from '../../src/docker/containers.js';
import { connectDocker, dockerReachable } from '../../src/docker/engine.js';
import type { SerializedDag, SerializedTask } from '../../src/core/dag-model.js';
import type { OperatorContext } from '../../src/engine/operators/types.js';
import type { Db } from '../../src/engine/store/db.js';
import type { GpuAllocator } from '../../src/engine/worker/gpus.js';
import { LogSink } from '../../src/engine/worker/log-sink.js';
import { uniqueName } from './env.js';
import { sleep } from '../../src/core/backoff.js';
export { sleep };

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');

export const BASE_IMAGE = process.env.AIRTASKS_TEST_BASE_IMAGE ?? 'airtasks-test/node-base:local';

export function docker(): Docker {
  return connectDocker();
}

/** Call in a before() hook: skips the suite when no engine answers, except in CI where that is a failure. */
export async function requireDocker(ctx: Mocha.Context): Promise<Docker> {
  const d = docker();
  if (await dockerReachable(d, 3000)) return d;
  const where = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  if (process.env.CI === 'true') {
    throw new Error(
      `the Docker engine is not reachable at ${where}; CI must start it (scripts/docker/ensure-dockerd.sh)`,
    );
  }
  ctx.skip();
}

let baseImageChecked: Promise<unknown> | undefined;

/**
 * The base image (host node + bash + busybox), made or brought up to date by
 * scripts/docker/build-base-image.sh (once per test process: it rebuilds only when its inputs changed).
 */
export async function ensureBaseImage(_d?: Docker): Promise<string> {
  baseImageChecked ??= run('bash', [path.join(ROOT, 'scripts/docker/build-base-image.sh')], {
    env: { ...process.env, AIRTASKS_BASE_IMAGE: BASE_IMAGE },
  });
  await baseImageChecked;
  return BASE_IMAGE;
}

/** Builds an image from a Dockerfile text (and files copied into the context), without any registry. */
export async function buildImage(
  d: Docker,
  tag: string,
  dockerfile: string,
  files: Record<string, string> = {},
): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-build-'));
  try {
    await writeFile(path.join(dir, 'Dockerfile'), dockerfile);
    for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content);
    const stream = await d.buildImage(
      { context: dir, src: ['Dockerfile', ...Object.keys(files)] },
      { t: tag, rm: true },
    );
    await new Promise<void>((resolve, reject) =>
      d.modem.followProgress(stream, (err: Error | null, out: Array<{ error?: string }>) => {
        const failed = out?.find((o) => o.error);
        if (err || failed) reject(err ?? new Error(failed?.error));
        else resolve();
      }),
    );
    return tag;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface SinkLine {
  stream: 'stdout' | 'stderr' | 'system';
  line: string;
  at: number;
}

/** A LogSink that keeps lines in memory (the real one writes them to Postgres). */
export class MemorySink extends LogSink {
  readonly lines: SinkLine[] = [];

  constructor() {
    super(
      undefined as unknown as Db,
      { runId: '', taskId: '', tryNumber: 0 },
      { capBytes: Number.MAX_SAFE_INTEGER },
    );
  }
  override stdout(line: string) {
    this.lines.push({ stream: 'stdout', line, at: Date.now() });
  }
  override stderr(line: string) {
    this.lines.push({ stream: 'stderr', line, at: Date.now() });
  }
  override system(line: string) {
    this.lines.push({ stream: 'system', line, at: Date.now() });
  }
  override flush(): Promise<void> {
    return Promise.resolve();
  }
  of(stream: SinkLine['stream']): string[] {
    return this.lines.filter((l) => l.stream === stream).map((l) => l.line);
  }
  text(): string {
    return this.lines.map((l) => `[${l.stream}] ${l.line}`).join('\n');
  }
}

export interface TestContext {
  ctx: OperatorContext;
  sink: MemorySink;
  abort: AbortController;
  /** Keys the operator read, in order. */
  reads: string[];
  runId: string;
}

/** An OperatorContext for one try of a docker task, with its own run id (so its containers can be found). */
export function dockerContext(
  args: Record<string, unknown>,
  opts: {
    variables?: Record<string, string>;
    gpus?: GpuAllocator;
    taskId?: string;
    conf?: Record<string, unknown>;
  } = {},
): TestContext {
  const runId = uniqueName('run');
  const taskId = opts.taskId ?? 'dock';
  const task: SerializedTask = {
    taskId,
    operator: 'docker',
    upstream: [],
    queue: 'worker',
    retries: 0,
    retryDelayMs: 0,
    retryExponentialBackoff: false,
    maxRetryDelayMs: 0,
    timeoutMs: null,
    triggerRule: 'all_success',
    priorityWeight: 1,
    args,
  };
  const dag: SerializedDag = {
    dagId: 'docker_test',
    description: '',
    fileloc: 'docker_test.ts',
    tags: [],
    tasks: [task],
  };
  const sink = new MemorySink();
  const abort = new AbortController();
  const reads: string[] = [];
  const vars = opts.variables ?? {};
  const ctx: OperatorContext = {
    dag,
    task,
    run: {
      dagId: dag.dagId,
      runId,
      taskId,
      tryNumber: 1,
      logicalDate: new Date('2026-01-02T03:04:05Z'),
      conf: opts.conf ?? {},
      outputs: new Map(),
    },
    log: sink,
    signal: abort.signal,
    dagsFolder: ROOT,
    variable: async (key) => {
      reads.push(key);
      return Object.hasOwn(vars, key) ? vars[key] : undefined;
    },
    ...(opts.gpus ? { gpus: opts.gpus } : {}),
  };
  return { ctx, sink, abort, reads, runId };
}

/** Removes every container of the given runs (tests that keep containers clean up with this). */
export async function removeRunContainers(d: Docker, runIds: string[]): Promise<void> {
  for (const runId of runIds) {
    for (const c of await findTaskContainers(d, { runId })) {
      await d
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined);
    }
  }
}

/** Polls until the check is true or the time is up. */
export async function until(check: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export interface FakeRegistry {
  /** host:port, e.g. 127.0.0.1:41234 */
  host: string;
  /** Paths requested, in order (to see that a pull happened). */
  requests: string[];
  /** Manifests pushed to it: `<name>:<tag>` -> the manifest's digest. */
  pushed: Map<string, string>;
  /** A pushed blob (layer or config) by digest, for tests that read a pushed image back. */
  blob(digest: string): Buffer | undefined;
  close(): Promise<void>;
}

/**
 * A minimal Docker registry (API v2, schema 2 manifests) on 127.0.0.1 serving one image
 * `<host>/<name>:<tag>` made of a static busybox, optionally behind Basic auth. The engine treats
 * 127.0.0.0/8 registries as insecure (plain HTTP) by default, so no TLS is needed.
 * It also takes pushes of any repository (monolithic or chunked blob uploads, then the manifest),
 * kept in memory and served back, with the digests checked as a registry does.
 */
export async function startFakeRegistry(opts: {
  name: string;
  tag: string;
  username?: string;
  password?: string;
}): Promise<FakeRegistry> {
  const layer = await busyboxLayer();
  const layerGz = gzipSync(layer);
  const digest = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] },
      rootfs: { type: 'layers', diff_ids: [digest(layer)] },
      history: [{ created_by: 'airtasks fake registry' }],
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: {
        mediaType: 'application/vnd.docker.container.image.v1+json',
        size: config.length,
        digest: digest(config),
      },
      layers: [
        {
          mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
          size: layerGz.length,
          digest: digest(layerGz),
        },
      ],
    }),
  );
  const blobs = new Map([
    [digest(config), config],
    [digest(layerGz), layerGz],
  ]);
  const expected =
    opts.username !== undefined
      ? `Basic ${Buffer.from(`${opts.username}:${opts.password ?? ''}`).toString('base64')}`
      : null;
  const requests: string[] = [];
  const uploads = new Map<string, Buffer[]>();
  const manifests = new Map<string, { body: Buffer; type: string }>();
  const pushed = new Map<string, string>();
  let nextUpload = 0;
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    requests.push(`${req.method} ${url}`);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, url, Buffer.concat(chunks)));
  });
  const handle = (req: http.IncomingMessage, res: http.ServerResponse, url: string, payload: Buffer) => {
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    if (expected && req.headers.authorization !== expected) {
      res.writeHead(401, {
        'WWW-Authenticate': 'Basic realm="airtasks-fake-registry"',
        'Content-Type': 'application/json',
      });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return;
    }
    if (url === '/v2/' || url === '/v2') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{}');
      return;
    }
    if (pushHandled(req, res, url, payload)) return;
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/?]+)/.exec(url);
    let body: Buffer | undefined;
    let type = 'application/octet-stream';
    const stored = m?.[2] === 'manifests' ? manifests.get(`${m[1]}:${m[3]}`) : undefined;
    if (stored) {
      body = stored.body;
      type = stored.type;
      res.setHeader('Docker-Content-Digest', digest(body));
    } else if (
      m &&
      m[1] === opts.name &&
      m[2] === 'manifests' &&
      (m[3] === opts.tag || m[3] === digest(manifest))
    ) {
      body = manifest;
      type = 'application/vnd.docker.distribution.manifest.v2+json';
      res.setHeader('Docker-Content-Digest', digest(manifest));
    } else if (m && m[2] === 'blobs') {
      body = blobs.get(m[3]!);
      if (body) res.setHeader('Docker-Content-Digest', m[3]!);
    }
    if (!body) {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          errors: [{ code: m?.[2] === 'blobs' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN', message: 'unknown' }],
        }),
      );
      return;
    }
    res.writeHead(200, { 'Content-Type': type, 'Content-Length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  /** The upload side of the API: POST starts an upload, PATCH appends, PUT ends it (digest checked). */
  const pushHandled = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: string,
    payload: Buffer,
  ): boolean => {
    const start = /^\/v2\/(.+)\/blobs\/uploads\/?(\?.*)?$/.exec(url);
    if (start && req.method === 'POST') {
      // Cross-repository mounts are declined: the engine then uploads the blob.
      const id = `u${++nextUpload}`;
      uploads.set(id, []);
      res.writeHead(202, {
        Location: `/v2/${start[1]}/blobs/uploads/${id}`,
        'Docker-Upload-UUID': id,
        Range: '0-0',
        'Content-Length': 0,
      });
      res.end();
      return true;
    }
    const up = /^\/v2\/(.+)\/blobs\/uploads\/([^/?]+)(\?.*)?$/.exec(url);
    if (up && uploads.has(up[2]!) && (req.method === 'PATCH' || req.method === 'PUT')) {
      const parts = uploads.get(up[2]!)!;
      parts.push(payload);
      const size = parts.reduce((n, b) => n + b.length, 0);
      if (req.method === 'PATCH') {
        res.writeHead(202, {
          Location: `/v2/${up[1]}/blobs/uploads/${up[2]}`,
          'Docker-Upload-UUID': up[2],
          Range: `0-${Math.max(size - 1, 0)}`,
          'Content-Length': 0,
        });
        res.end();
        return true;
      }
      const want = new URLSearchParams(up[3]?.slice(1) ?? '').get('digest');
      const blob = Buffer.concat(parts);
      uploads.delete(up[2]!);
      if (want !== digest(blob)) {
        res.writeHead(400, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'DIGEST_INVALID', message: 'digest mismatch' }] }));
        return true;
      }
      blobs.set(want, blob);
      res.writeHead(201, {
        Location: `/v2/${up[1]}/blobs/${want}`,
        'Docker-Content-Digest': want,
        'Content-Length': 0,
      });
      res.end();
      return true;
    }
    const man = /^\/v2\/(.+)\/manifests\/([^/?]+)$/.exec(url);
    if (man && req.method === 'PUT') {
      const type = req.headers['content-type'] ?? 'application/vnd.docker.distribution.manifest.v2+json';
      const parsed = JSON.parse(payload.toString('utf8')) as {
        config?: { digest: string };
        layers?: Array<{ digest: string }>;
      };
      const missing = [parsed.config, ...(parsed.layers ?? [])].filter((d) => d && !blobs.has(d.digest));
      if (missing.length > 0) {
        res.writeHead(400, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_BLOB_UNKNOWN', message: 'blob unknown' }] }));
        return true;
      }
      const d = digest(payload);
      manifests.set(`${man[1]}:${man[2]}`, { body: payload, type });
      manifests.set(`${man[1]}:${d}`, { body: payload, type });
      pushed.set(`${man[1]}:${man[2]}`, d);
      res.writeHead(201, {
        Location: `/v2/${man[1]}/manifests/${d}`,
        'Docker-Content-Digest': d,
        'Content-Length': 0,
      });
      res.end();
      return true;
    }
    return false;
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    requests,
    pushed,
    blob: (d: string) => blobs.get(d),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An uncompressed layer: /bin/busybox (static) and /bin/sh -> busybox, packed by the system's tar. */
async function busyboxLayer(): Promise<Buffer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-layer-'));
  try {
    await mkdir(path.join(dir, 'bin'));
    await copyFile('/bin/busybox', path.join(dir, 'bin/busybox'));
    await symlink('busybox', path.join(dir, 'bin/sh'));
    await symlink('busybox', path.join(dir, 'bin/echo'));
    const { stdout } = await run(
      'tar',
      ['-C', dir, '--numeric-owner', '--owner=0', '--group=0', '-cf', '-', 'bin'],
      {
        encoding: 'buffer',
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    return stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
