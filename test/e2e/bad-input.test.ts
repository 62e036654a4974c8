/**
 * Bad input through the CLI, as a user or a script would give it: each case gets a clear message and
 * its documented exit code, writes nothing, and harms nothing else (a good run still goes through).
 * Also: a seeded fuzz of conf and variable values, huge logs and outputs, a queue nobody consumes, and
 * secret variables (encrypted at rest, key from AIRTASKS_SECRET_KEY / AIRTASKS_SECRET_KEY_FILE).
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import pg from 'pg';
import { Daemon, runCli, tempDagsFolder, type CliResult } from '../helpers/cli.js';
import { DATABASE_URL, requireService, uniqueName } from '../helpers/env.js';
import { seededRandom } from '../helpers/faults.js';
import { AirtasksError, ValidationError } from '../../src/core/errors.js';
import { showRun } from '../../src/services/runs.js';
import { triggerDag } from '../../src/services/trigger.js';
import { exportVariables, importVariables } from '../../src/services/variables.js';

const DAGS = {
  'bad_input.ts': `
import { dag } from 'airtasks';

export const ok = dag('bi_ok', { defaults: { retries: 0 } });
ok.bash('echo_conf', { command: 'echo "$AIRTASKS_CONF" | head -c 100; echo; echo "key=\${AIRTASKS_SECRET_KEY:-none}"' });

export const log = dag('bi_log', { defaults: { retries: 0 } });
// 11 MB of log, over the 10 MiB cap per try; then a binary last line (a NUL byte).
log.bash('huge_log', { command: 'head -c 11000000 /dev/zero | tr "\\\\0" x | fold -w 1000; echo; printf "end\\\\0bin\\\\n"' });

export const out = dag('bi_output', { defaults: { retries: 0 } });
out.node('huge_output', { run: () => 'x'.repeat(300 * 1024) });

export const secret = dag('bi_secret', { defaults: { retries: 0 } });
secret.node('reads_secret', {
  run: async (ctx) => {
    const v = await ctx.variable('bi_password');
    ctx.log('the password is', v);
    return (v ?? '').length;
  },
});

export const nobody = dag('bi_nobody');
nobody.bash('waits', { command: 'true', queue: 'nobody_listens' });
`,
  'broken_syntax.ts': `export const x = ;\n`,
  'cycle.ts': `
import { dag } from 'airtasks';
const d = dag('bi_cycle');
const a = d.bash('a', { command: 'true' });
const b = d.bash('b', { command: 'true', upstream: a });
a.setUpstream(b);
export default d;
`,
};

const KEY = randomBytes(32).toString('base64');

describe('e2e: bad input, huge logs and outputs, secrets', function () {
  this.timeout(120_000);
  const schema = uniqueName('bi');
  let env: NodeJS.ProcessEnv;
  let dags: Awaited<ReturnType<typeof tempDagsFolder>>;
  let scheduler: Daemon | null = null;
  let worker: Daemon | null = null;
  let db: pg.Client;

  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => runCli(args, { ...env, ...extra });
  // The CLI's JSON, read field by field in the assertions.
  const json = (r: CliResult) => JSON.parse(r.stdout);
  const runCount = async () =>
    Number((await db.query(`SELECT count(*) AS n FROM "${schema}".dag_runs`)).rows[0].n);
  /** A refusal: the exit code, a one-line message on stderr mentioning `text`, nothing on stdout. */
  const expectRefused = (r: CliResult, code: number, text: string | RegExp, where = '') => {
    // oclif wraps a message over lines prefixed with ' › ': read it as one line.
    const msg = r.stderr.replace(/\s*\n\s*›\s*/g, ' ');
    expect(r.code, `${where}\n${r.stderr.slice(0, 2000)}`).to.equal(code);
    // Under --json stdout holds the error as JSON, with the same exit code; otherwise nothing.
    if (r.stdout.trim()) expect(JSON.parse(r.stdout).error).to.include({ exitCode: code });
    if (typeof text === 'string') expect(msg).to.include(text);
    else expect(msg).to.match(text);
    expect(r.stderr).to.not.match(/\n\s+at .*\.(js|ts):\d+/); // no stack trace
  };

  before(async function () {
    await requireService(this, 'postgres');
    dags = await tempDagsFolder(DAGS);
    env = {
      AIRTASKS_DATABASE_URL: DATABASE_URL,
      AIRTASKS_DB_SCHEMA: schema,
      AIRTASKS_DAGS_FOLDER: dags.dir,
      AIRTASKS_BROKER_URL: '',
      AIRTASKS_SECRET_KEY: '',
      AIRTASKS_SECRET_KEY_FILE: '',
    };
    // Postgres queue, a scheduler and a worker that know the secret key.
    scheduler = new Daemon(['scheduler', '--scan-interval', '300'], env);
    await scheduler.waitFor('scheduler started');
    worker = new Daemon(['worker', '-q', 'worker', '-c', '2'], { ...env, AIRTASKS_SECRET_KEY: KEY });
    await worker.waitFor('worker started');
    db = new pg.Client({ connectionString: DATABASE_URL });
    await db.connect();
    // The DAG processor has stored the good DAGs (and the import errors).
    for (let i = 0; ; i++) {
      const r = await db
        .query(`SELECT count(*) AS n FROM "${schema}".dags`)
        .catch(() => ({ rows: [{ n: 0 }] }));
      if (Number(r.rows[0].n) >= 5) break;
      if (i > 150) throw new Error(`DAGs not parsed:\n${scheduler.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  after(async () => {
    await worker?.stop();
    await scheduler?.stop();
    if (db) {
      await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await db.end();
    }
    await dags?.remove();
  });

  it('refuses conf that is not JSON or not an object (exit 2) before writing anything', async () => {
    const before = await runCount();
    expectRefused(
      await cli(['trigger', 'dag', 'bi_ok', '--conf', '{not json']),
      2,
      '--conf is not valid JSON',
    );
    expectRefused(await cli(['trigger', 'dag', 'bi_ok', '--conf', '[1, 2]']), 2, 'must be a JSON object');
    expectRefused(await cli(['trigger', 'dag', 'bi_ok', '--conf', '"text"']), 2, 'must be a JSON object');
    expectRefused(await cli(['trigger', 'dag', 'bi_ok', '--conf', '{"a": "x\\u0000y"}']), 2, 'NUL character');
    expectRefused(
      await cli(['trigger', 'dag', 'bi_ok', '--conf', '{"a": "\\ud800"}']),
      2,
      'unpaired UTF-16 surrogate',
    );
    expectRefused(
      await cli(['trigger', 'dag', 'bi_ok', '--conf', '{"a":'.repeat(150) + '1' + '}'.repeat(150)]),
      2,
      'nested deeper than 100 levels',
    );
    const big = path.join(dags.dir, 'big-conf.json');
    await writeFile(big, JSON.stringify({ blob: 'x'.repeat(2 * 1024 * 1024) }));
    expectRefused(await cli(['trigger', 'dag', 'bi_ok', '--conf-file', big]), 2, 'over the limit');
    expectRefused(
      await cli(['trigger', 'dag', 'bi_ok', '--conf-file', '/nonexistent.json']),
      2,
      'cannot read',
    );
    expect(await runCount()).to.equal(before);
  });

  it('says "not found" (exit 3) for an unknown DAG, run, task or variable', async () => {
    expectRefused(
      await cli(['trigger', 'dag', 'no_such_dag']),
      3,
      /unknown DAG "no_such_dag"; known DAGs: .*bi_ok/,
    );
    expectRefused(await cli(['dags', 'show', 'no_such_dag']), 3, 'unknown DAG');
    expectRefused(await cli(['runs', 'show', 'no_such_run']), 3, 'unknown run "no_such_run"');
    expectRefused(await cli(['tasks', 'logs', 'no_such_run', 'x']), 3, 'has no task');
    const r = await cli(['trigger', 'dag', 'bi_ok', '--wait', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    expectRefused(
      await cli(['tasks', 'logs', json(r).runId, 'no_such_task']),
      3,
      'has no task "no_such_task"',
    );
    expectRefused(await cli(['variables', 'get', 'no_such_var']), 3, 'no variable');
  });

  it('reports invalid DAG files (exit 5) naming each file, and the good DAGs still run', async () => {
    const v = await cli(['dags', 'validate']);
    expect(v.code, v.stdout + v.stderr).to.equal(5);
    expect(v.stdout + v.stderr)
      .to.include('broken_syntax.ts')
      .and.include('cycle');
    const list = await cli(['dags', 'list', '--json']);
    expect(list.code).to.equal(0);
    expect(list.stdout).to.include('broken_syntax.ts');
    const r = await cli(['trigger', 'dag', 'bi_ok', '--wait', '--json']);
    expect(r.code, r.stderr).to.equal(0);
  });

  it('caps a huge log (the try still succeeds) and cleans a binary last line', async () => {
    const r = await cli(['trigger', 'dag', 'bi_log', '--wait', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    const logs = await cli(['tasks', 'logs', json(r).runId, 'huge_log', '--json']);
    const lines = json(logs).lines as Array<{ line: string; stream: string }>;
    expect(lines.at(-1)!.line).to.match(/log truncated: this try wrote more than 10485760 bytes/);
    const stored = lines.reduce((n, l) => n + Buffer.byteLength(l.line) + 1, 0);
    expect(stored).to.be.below(10.6 * 1024 * 1024);
    const show = json(await cli(['runs', 'show', json(r).runId, '--json']));
    expect(show.tasks[0].output).to.equal('end\ufffdbin');
  });

  it('fails a try whose output is over the cap with a message that says what to do (run exit 10)', async () => {
    const r = await cli(['trigger', 'dag', 'bi_output', '--wait', '--json']);
    expect(r.code, r.stderr).to.equal(10);
    const show = json(await cli(['runs', 'show', json(r).runId, '--json']));
    expect(show.tasks[0].state).to.equal('failed');
    expect(show.tasks[0].error).to.match(
      /output is \d+ bytes, over the cap of 262144 bytes: store large data elsewhere/,
    );
  });

  // The fuzz loops call the services the commands call (same checks, same errors), in this process:
  // a CLI process per case would make the loop slow; the CLI's exit codes are checked above.
  it('fuzz: random conf is either stored exactly or refused with exit code 2, nothing in between', async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const rnd = seededRandom(seed);
    const conn = { databaseUrl: DATABASE_URL, schema, dagsFolder: dags.dir };
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 40; i++) {
      const text = JSON.stringify({ case: i, v: fuzzValue(rnd, 0) });
      const where = `seed ${seed} case ${i}: ${text.slice(0, 200)}`;
      const before = await runCount();
      try {
        const r = await triggerDag({ ...conn, dagId: 'bi_ok', confText: text });
        accepted++;
        expect((await showRun({ ...conn, runId: r.runId })).conf, where).to.deep.equal(JSON.parse(text));
      } catch (err) {
        refused++;
        expect(err, where).to.be.instanceOf(AirtasksError);
        expect((err as AirtasksError).exitCode, `${where}\n${(err as Error).message}`).to.equal(2);
        // The service names the field; the CLI words it with the flag, as `trigger dag --conf` shows it.
        expect(err, where).to.be.instanceOf(ValidationError).and.include({ field: 'conf' });
        expect((err as ValidationError).messageFor('--conf')).to.match(/^--conf/);
        expect(await runCount(), where).to.equal(before);
      }
    }
    expect(accepted + refused).to.equal(40);
    // Nothing else was harmed: a run still goes through.
    expect((await cli(['trigger', 'dag', 'bi_ok', '--wait'])).code).to.equal(0);
  });

  it('fuzz: variable imports are all or nothing, and stored values come back exactly', async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const rnd = seededRandom(seed);
    const conn = { databaseUrl: DATABASE_URL, schema, dagsFolder: dags.dir };
    const file = path.join(dags.dir, 'fuzz-vars.json');
    for (let i = 0; i < 20; i++) {
      const vars: Record<string, string> = {};
      for (let k = 0; k < 3; k++) vars[`fuzz_${i}_${k}`] = fuzzString(rnd);
      await writeFile(file, JSON.stringify(vars));
      const where = `seed ${seed} case ${i}`;
      const outcome = await importVariables({ ...conn, file }).catch((e: unknown) => e);
      const mine = Object.fromEntries(
        Object.entries(await exportVariables(conn)).filter(([k]) => k.startsWith(`fuzz_${i}_`)),
      );
      if (outcome instanceof Error) {
        expect(outcome, where).to.be.instanceOf(AirtasksError);
        expect((outcome as AirtasksError).exitCode, `${where}: ${outcome.message}`).to.equal(2);
        expect(outcome.message).to.match(/the value of "fuzz_/);
        expect(mine, `${where}: all or nothing`).to.deep.equal({});
      } else {
        expect(mine, where).to.deep.equal(vars);
      }
    }
  });

  it('keeps a task queued on a queue nobody consumes; trigger still works', async () => {
    const r = await cli(['trigger', 'dag', 'bi_nobody', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    let task: { state: string; queue: string; requeues: number } | undefined;
    for (let i = 0; i < 100 && task?.state !== 'queued'; i++) {
      await new Promise((res) => setTimeout(res, 100));
      task = json(await cli(['runs', 'show', json(r).runId, '--json'])).tasks[0];
    }
    expect(task).to.include({ state: 'queued', queue: 'nobody_listens', requeues: 0 });
  });

  it('secrets: encrypted at rest, need the key to set or read, masked in lists, logs and exports', async () => {
    expectRefused(
      await cli(['variables', 'set', 'bi_password', 's3cr3t-value', '--secret']),
      2,
      /needs the secret key: set AIRTASKS_SECRET_KEY/,
    );
    expectRefused(await cli(['variables', 'get', 'bi_password']), 3, 'no variable');
    const withKey = { AIRTASKS_SECRET_KEY: KEY };
    expect(
      (await cli(['variables', 'set', 'bi_password', 's3cr3t-value', '--secret'], withKey)).code,
    ).to.equal(0);
    const row = (
      await db.query(`SELECT value, encrypted FROM "${schema}".variables WHERE key = 'bi_password'`)
    ).rows[0];
    expect(row.encrypted).to.equal(true);
    expect(row.value).to.match(/^v1\./);
    expect(row.value).to.not.include('s3cr3t');
    // The key from a file works as well (a swarm secret).
    const keyFile = path.join(dags.dir, 'key');
    await writeFile(keyFile, KEY + '\n');
    const got = await cli(['variables', 'get', 'bi_password', '--reveal'], {
      AIRTASKS_SECRET_KEY_FILE: keyFile,
    });
    expect(got.code, got.stderr).to.equal(0);
    expect(got.stdout.trim()).to.equal('s3cr3t-value');
    expectRefused(await cli(['variables', 'get', 'bi_password', '--reveal']), 2, 'needs the secret key');
    expectRefused(
      await cli(['variables', 'get', 'bi_password', '--reveal'], {
        AIRTASKS_SECRET_KEY: randomBytes(32).toString('hex'),
      }),
      2,
      'was encrypted with key',
    );
    expectRefused(
      await cli(['variables', 'get', 'bi_password', '--reveal'], { AIRTASKS_SECRET_KEY: 'too-short' }),
      2,
      'openssl rand',
    );
    const list = await cli(['variables', 'list', '--json']);
    expect(list.stdout).to.include('"***"').and.not.include('s3cr3t');
    const exp = await cli(['variables', 'export', '--json'], withKey);
    expect(json(exp)).to.not.have.property('bi_password');
    // Secrets are exported as secrets: encrypted as stored, or in clear only with --reveal.
    const expAll = await cli(['variables', 'export', '--include-secrets', '--json'], withKey);
    expect(json(expAll).bi_password).to.deep.equal({ secret: true, encrypted: row.value });
    const expClear = await cli(['variables', 'export', '--include-secrets', '--reveal', '--json'], withKey);
    expect(json(expClear).bi_password).to.deep.equal({ secret: true, value: 's3cr3t-value' });
    // A task reads it (the worker has the key), and its log shows it masked; bash tasks never see the key.
    const run = await cli(['trigger', 'dag', 'bi_secret', '--wait', '--json']);
    expect(run.code, run.stderr).to.equal(0);
    const show = json(await cli(['runs', 'show', json(run).runId, '--json']));
    expect(show.tasks[0].output).to.equal('s3cr3t-value'.length);
    const logs = await cli(['tasks', 'logs', json(run).runId, 'reads_secret']);
    expect(logs.stdout).to.include('the password is ***').and.not.include('s3cr3t');
    const okRun = json(await cli(['trigger', 'dag', 'bi_ok', '--wait', '--json']));
    const okShow = json(await cli(['runs', 'show', okRun.runId, '--json']));
    expect(okShow.tasks[0].output).to.equal('key=none');
  });
});

/** A random JSON value: unicode (NULs, lone surrogates, emoji), long strings, deep nesting. */
function fuzzValue(rnd: () => number, depth: number): unknown {
  const r = rnd();
  if (depth < 120 && r < 0.25)
    return rnd() < 0.5 ? [fuzzValue(rnd, depth + 1)] : { [fuzzString(rnd, 8)]: fuzzValue(rnd, depth + 1) };
  if (r < 0.35) return Math.floor(rnd() * 1e9) - 5e8;
  if (r < 0.4) return rnd() < 0.5;
  if (r < 0.45) return null;
  if (r < 0.6) {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < 3; i++) o[fuzzString(rnd, 8)] = fuzzValue(rnd, depth + 1);
    return o;
  }
  return fuzzString(rnd);
}

function fuzzString(rnd: () => number, maxLen = 0): string {
  const len = maxLen || (rnd() < 0.1 ? Math.floor(rnd() * 300_000) : Math.floor(rnd() * 40));
  if (len > 1000) return 'L'.repeat(len);
  let s = '';
  for (let i = 0; i < len; i++) {
    const k = rnd();
    if (k < 0.03) s += '\u0000';
    else if (k < 0.06)
      s += String.fromCharCode(0xd800 + Math.floor(rnd() * 0x800)); // maybe a lone surrogate
    else if (k < 0.2)
      s += String.fromCodePoint(0x1f300 + Math.floor(rnd() * 0x300)); // emoji
    else if (k < 0.4) s += String.fromCodePoint(0x80 + Math.floor(rnd() * 0x2000));
    else s += String.fromCharCode(0x20 + Math.floor(rnd() * 95));
  }
  return s;
}
