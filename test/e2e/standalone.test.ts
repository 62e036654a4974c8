/**
 * `airtasks standalone` (embedded Postgres): `--run` runs a DAG of a fresh project (the DAG is parsed
 * before it is triggered, although the scheduler parses beside scheduling); run as root, a folder the
 * "postgres" user cannot enter is named with what to change (exit 4), instead of initdb failing or its
 * spawn crashing the process with an EACCES stack trace.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { runCli, ROOT } from '../helpers/cli.js';
import { uniqueName } from '../helpers/env.js';
import { firstBlocked, systemUser } from '../../src/services/standalone-access.js';

const DAG = `
import { dag } from 'airtasks';
const d = dag('sa_hello', { defaults: { retries: 0 } });
d.bash('hello', { command: 'echo hello from standalone' });
export default d;
`;

/** Root only (embedded Postgres runs as "postgres" then): skipped elsewhere, except in CI. */
function requireRoot(ctx: Mocha.Context) {
  if (process.getuid?.() === 0) return;
  if (process.env.CI === 'true') throw new Error('CI runs these tests as root (the container user)');
  ctx.skip(); // not root: Postgres runs as this user, and no folder is out of its reach
}

const messageOf = (stderr: string) => stderr.replace(/\s*\n\s*›\s*/g, ' ');
const NO_STACK = /\n\s+at .*\.(js|ts):\d+/;

describe('e2e: standalone', function () {
  this.timeout(180_000);
  const env = {
    AIRTASKS_DATABASE_URL: '',
    AIRTASKS_BROKER_URL: '',
    AIRTASKS_DB_SCHEMA: '',
    AIRTASKS_DAGS_FOLDER: '',
    AIRTASKS_LOG_LEVEL: '',
  };

  it('--run runs a DAG of a fresh project, parsed before it is triggered', async function () {
    // Inside the repository, so that `import ... from 'airtasks'` resolves to this package.
    const dir = path.join(ROOT, 'test', '.tmp', uniqueName('standalone'));
    await mkdir(path.join(dir, 'dags'), { recursive: true });
    await writeFile(path.join(dir, 'airtasks.json'), JSON.stringify({ dagsFolder: 'dags' }));
    await writeFile(path.join(dir, 'dags', 'hello.ts'), DAG);
    try {
      const r = await runCli(['standalone', '--run', 'sa_hello', '--timeout', '90'], env, 150_000, {
        cwd: dir,
      });
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/Run .* of sa_hello: success/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('as root', function () {
    let dir: string;
    before(function () {
      requireRoot(this);
    });
    afterEach(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('from a folder the postgres user cannot enter: names it and what to change (exit 4)', async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-private-')); // mode 0700, owner root
      await mkdir(path.join(dir, 'dags'));
      await writeFile(path.join(dir, 'airtasks.json'), JSON.stringify({ dagsFolder: 'dags' }));
      const r = await runCli(['standalone', '--run', 'any'], env, 60_000, { cwd: dir });
      const msg = messageOf(r.stderr);
      expect(r.code, r.stderr).to.equal(4);
      expect(msg).to.include(
        `its embedded Postgres runs as the system user "postgres", which cannot enter ${dir} (mode 0700, owner root)`,
      );
      expect(msg).to.include(`chmod o+x ${dir}`).and.include('run standalone as a user other than root');
      expect(r.stderr).to.not.match(NO_STACK).and.not.include('EACCES');
    });

    it('finds a folder on the way to the programs, and none where every folder may be entered', async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-private-'));
      const programs = path.join(dir, 'node_modules', 'bin');
      await mkdir(programs, { recursive: true, mode: 0o755 });
      const postgres = systemUser('postgres');
      expect(firstBlocked([ROOT, programs], postgres)).to.deep.include({
        folder: dir,
        mode: 0o700,
        target: programs,
      });
      // A user that does not exist yet gets the bits for others.
      expect(firstBlocked([programs], null)).to.include({ folder: dir });
      expect(firstBlocked([ROOT, os.tmpdir()], postgres)).to.equal(null);
    });
  });
});
