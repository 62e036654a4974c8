/** Finds DAG files in a folder and parses them in child processes. */
import { fork } from 'node:child_process';
import { statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SerializedDag } from '../../core/dag-model.js';

export interface DagFile {
  /** Path relative to the dags folder, with '/' separators: the DAG's fileloc. */
  fileloc: string;
  path: string;
  mtimeMs: number;
  size: number;
}

export interface ParseRequest {
  files: Array<{ fileloc: string; path: string }>;
}

export interface FileResult {
  fileloc: string;
  dags: SerializedDag[];
  error: string | null;
  durationMs: number;
}

const DAG_FILE = /\.(ts|mts|js|mjs)$/;
const IGNORED = /(^|\/)(node_modules|\.[^/]*|__[^/]*)(\/|$)|\.d\.ts$|\.(test|spec)\.[mc]?[jt]s$/;
const CHILD = fileURLToPath(new URL('./parse-child.js', import.meta.url));

/** Every DAG file below the folder, skipping node_modules, dot-folders, __* folders, tests and .d.ts files. */
export async function listDagFiles(folder: string): Promise<DagFile[]> {
  const root = path.resolve(folder);
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  const files: DagFile[] = [];
  for (const e of entries) {
    if (!e.isFile() || !DAG_FILE.test(e.name)) continue;
    const full = path.join(e.parentPath, e.name);
    const fileloc = path.relative(root, full).split(path.sep).join('/');
    if (IGNORED.test(fileloc)) continue;
    // Synchronous: a scheduler stats every file of the folder on each scan, and 1,000 promise round trips
    // through the thread pool cost 50-100 ms of CPU a scan against about 5 for these calls.
    const st = statSync(full, { throwIfNoEntry: false });
    if (st) files.push({ fileloc, path: full, mtimeMs: st.mtimeMs, size: st.size });
  }
  // Code-point order: stable across machines and locales (and localeCompare is slow on 1,000 names).
  return files.sort((a, b) => (a.fileloc < b.fileloc ? -1 : a.fileloc > b.fileloc ? 1 : 0));
}

/**
 * Parses files in one child, which sends each file's result as soon as it has it. A file that takes
 * longer than `timeoutMs` to import, or ends the child, is reported alone: the files before it keep
 * their results, and those after it are parsed in a new child.
 */
export async function parseDagFiles(
  files: Array<{ fileloc: string; path: string }>,
  timeoutMs = 60_000,
  signal?: AbortSignal,
): Promise<FileResult[]> {
  const out: FileResult[] = [];
  let rest = files;
  while (rest.length > 0) {
    const batch = await parseInChild(rest, timeoutMs, signal);
    out.push(...batch.results);
    if (!batch.failure) break;
    const culprit = rest[batch.results.length]!;
    out.push({ fileloc: culprit.fileloc, dags: [], error: batch.failure, durationMs: batch.failedAfterMs });
    rest = rest.slice(batch.results.length + 1);
  }
  return out;
}

interface Batch {
  results: FileResult[];
  /** Why the child stopped before the end: the file after the last result is to blame. */
  failure?: string;
  failedAfterMs: number;
}

function parseInChild(
  files: Array<{ fileloc: string; path: string }>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Batch> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const child = fork(CHILD, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'advanced' });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.stdout!.resume();
    const results: FileResult[] = [];
    let done = false;
    let failure: string | undefined;
    let fileStarted = Date.now();
    let timer: NodeJS.Timeout;
    // Each file gets timeoutMs of its own, from the previous file's result.
    const arm = () => {
      clearTimeout(timer);
      fileStarted = Date.now();
      timer = setTimeout(() => {
        failure = `importing took longer than ${timeoutMs} ms (does the file run work at import time?)`;
        child.kill('SIGKILL');
      }, timeoutMs);
    };
    const onAbort = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('message', (m: ChildMessage) => {
      if (m === 'done') done = true;
      else {
        results.push(m);
        arm();
      }
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
    // 'close', not 'exit': it comes after the IPC channel closed, so every result sent has arrived.
    child.on('close', (code, exitSignal) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) return reject(signal.reason);
      const failedAfterMs = Date.now() - fileStarted;
      if (done || results.length === files.length) return resolve({ results, failedAfterMs });
      resolve({
        results,
        failedAfterMs,
        failure:
          failure ??
          `the file's import ended the process (${exitSignal ?? `exit code ${code}`})${stderr ? `: ${stderr.trim()}` : ''}`,
      });
    });
    arm();
    child.send({ files } satisfies ParseRequest);
  });
}

/** What the child sends: each file's result as it has it, then 'done'. */
export type ChildMessage = FileResult | 'done';
