/**
 * What a CLI command loads: one that reads the database must not load the Docker and stack modules (the
 * stack relay's, needed only where no database is configured), which cost every command some 250 ms and
 * 10 MiB.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { BIN } from '../helpers/cli.js';

/** Runs the CLI with a loader hook that records every module file it loads; those files' URLs. */
async function modulesLoadedBy(args: string[]): Promise<{ code: number; urls: string[] }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-imports-'));
  try {
    const log = path.join(dir, 'loaded.txt');
    await writeFile(
      path.join(dir, 'hooks.mjs'),
      `import { appendFileSync } from 'node:fs';
       export async function load(url, context, next) {
         appendFileSync(${JSON.stringify(log)}, url + '\\n');
         return next(url, context);
       }`,
    );
    await writeFile(
      path.join(dir, 'register.mjs'),
      `import { register } from 'node:module';
       register(${JSON.stringify(pathToFileURL(path.join(dir, 'hooks.mjs')).href)});`,
    );
    const code = await new Promise<number>((resolve) => {
      execFile(process.execPath, ['--import', path.join(dir, 'register.mjs'), BIN, ...args], (err) =>
        resolve(err ? Number(err.code) : 0),
      );
    });
    return { code, urls: (await readFile(log, 'utf8')).trim().split('\n') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('the modules a CLI command loads', function () {
  this.timeout(60_000);

  it('reading the database loads no Docker or stack module', async () => {
    // Nothing listens on port 1: the command loads what it needs, fails to connect, and exits 4.
    const { code, urls } = await modulesLoadedBy([
      'runs',
      'list',
      '--database-url',
      'postgres://127.0.0.1:1/x',
    ]);
    expect(code).to.equal(4);
    expect(
      urls.some((u) => u.includes('/dist/services/runs.js')),
      'the command ran',
    ).to.equal(true);
    expect(urls.filter((u) => /\/dist\/(docker\/|services\/stack-)/.test(u))).to.deep.equal([]);
  });
});
