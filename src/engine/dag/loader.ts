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
 * Parses files in one child; if that child dies or times out, each file of the batch is parsed alone
 * so that only the culprit is reported.
 */
export async function parseDagFiles(
  files: Array<{ fileloc: string; path: string }>,
  timeoutMs = 60_000,
): Promise<FileResult[]> {
  if (files.length === 0) return [];
  try {
    return await parseInChild(files, timeoutMs);
  } catch (err) {
    if (files.length === 1) {
      return [{ fileloc: files[0]!.fileloc, dags: [], error: (err as Error).message, durationMs: 0 }];
    }
    const out: FileResult[] = [];
    for (const f of files) out.push(...(await parseDagFiles([f], timeoutMs)));
    return out;
  }
}

function parseInChild(
  files: Array<{ fileloc: string; path: string }>,
  timeoutMs: number,
): Promise<FileResult[]> {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'advanced' });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.stdout!.resume();
    let results: FileResult[] | null = null;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`importing took longer than ${timeoutMs} ms (does the file run work at import time?)`),
      );
    }, timeoutMs);
    child.on('message', (m) => (results = m as FileResult[]));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (results) resolve(results);
      else
        reject(
          new Error(
            `the file's import ended the process (${signal ?? `exit code ${code}`})${stderr ? `: ${stderr.trim()}` : ''}`,
          ),
        );
    });
    child.send({ files } satisfies ParseRequest);
  });
}
