/**
 * Scaffolded projects for tests: `airtasks init` into test/.tmp (inside the repository, on the same
 * file system, so node_modules can be hard links), and an installed airtasks made of this
 * repository's package files and its production dependencies, as `npm install airtasks` would
 * leave it, without a registry.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, runCli } from './cli.js';
import { uniqueName } from './env.js';

const run = promisify(execFile);

export interface TestProject {
  dir: string;
  name: string;
  remove(): Promise<void>;
}

export async function scaffoldTestProject(args: string[] = []): Promise<TestProject> {
  const name = uniqueName('proj').toLowerCase();
  const dir = path.join(ROOT, 'test', '.tmp', name);
  await mkdir(path.dirname(dir), { recursive: true });
  const r = await runCli(['init', dir, '--yes', '--name', name, ...args], {});
  if (r.code !== 0) throw new Error(`airtasks init failed (${r.code}):\n${r.stderr}`);
  return { dir, name, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** node_modules/airtasks (the package's files) plus its production dependencies, as hard links. */
export async function installAirtasks(projectDir: string): Promise<void> {
  const nm = path.join(projectDir, 'node_modules');
  const own = path.join(nm, 'airtasks');
  await mkdir(own, { recursive: true });
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
  const files = ['package.json', ...pkg.files].filter((f) => existsSync(path.join(ROOT, f)));
  await run('cp', ['-al', ...files.map((f) => path.join(ROOT, f)), own]);
  const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean }>;
  };
  const top = Object.entries(lock.packages)
    .filter(([p, meta]) => p.startsWith('node_modules/') && !meta.dev)
    .map(([p]) => p)
    .filter((p) => !p.slice('node_modules/'.length).includes('/node_modules/'))
    .filter((p) => existsSync(path.join(ROOT, p)));
  for (const p of top) {
    await mkdir(path.dirname(path.join(projectDir, p)), { recursive: true });
    await run('cp', ['-al', path.join(ROOT, p), path.join(projectDir, p)]);
  }
}

/** A one-node swarm on this machine's engine (scripts/docker/ensure-swarm.sh, idempotent). */
export async function ensureSwarm(): Promise<void> {
  await run('bash', [path.join(ROOT, 'scripts/docker/ensure-swarm.sh')]);
}
