/** Celery, a peer in the same invocation: runs bench/peers/celery_peer.py with Debian's python3-celery. */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { BROKER_URL, DATABASE_URL, uniqueName } from '../engine.js';
import type { ChainTimes } from './graphile.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./celery_peer.py', import.meta.url));
export const CELERY_INSTALL = 'apt-get install -y python3-celery python3-sqlalchemy python3-psycopg2';

/** Null when Celery (with the SQLAlchemy/psycopg2 result backend) can be run, else why not. */
export function celeryMissing(): Promise<string | null> {
  return new Promise((resolve) =>
    execFile(PYTHON, ['-c', 'import celery, sqlalchemy, psycopg2'], (err) =>
      resolve(err ? `not installed (${CELERY_INSTALL})` : null),
    ),
  );
}

async function runPeer(args: string[], timeoutMs: number): Promise<unknown> {
  const schema = uniqueName('bench_celery');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-bench-celery-'));
  try {
    const stdout = await new Promise<string>((resolve, reject) => {
      const child = spawn(PYTHON, [SCRIPT, ...args], {
        env: {
          ...process.env,
          BENCH_BROKER_URL: BROKER_URL,
          BENCH_DATABASE_URL: DATABASE_URL,
          BENCH_SCHEMA: schema,
          BENCH_TIMES: path.join(dir, 'times'),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const t = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
      child.on('close', (code) => {
        clearTimeout(t);
        if (code === 0) resolve(out);
        else reject(new Error(`celery peer exited ${code}: ${err.slice(-2000)}`));
      });
    });
    return JSON.parse(stdout.trim().split('\n').pop()!);
  } finally {
    await rm(dir, { recursive: true, force: true });
    const conn = await amqp.connect(BROKER_URL);
    const ch = await conn.createChannel();
    await ch.deleteQueue(schema).catch(() => undefined);
    await conn.close().catch(() => undefined);
  }
}

/** Chains of `length` no-op tasks (Celery's chain primitive: each link's worker publishes the next). */
export async function celeryChain(length: number, runs: number, timeoutMs: number): Promise<ChainTimes> {
  return (await runPeer(['chain', String(length), String(runs)], timeoutMs)) as ChainTimes;
}

/** `count` no-op tasks published as one group; tasks per second from the first publish to the last SUCCESS. */
export async function celeryFanOut(count: number, concurrency: number, timeoutMs: number): Promise<number> {
  const r = (await runPeer(['fanout', String(count), String(concurrency)], timeoutMs)) as {
    tasksPerSecond: number;
  };
  return r.tasksPerSecond;
}
