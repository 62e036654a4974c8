/**
 * Secret variables never shown or stored in clear (issue 16): a scheduler and a worker as subprocesses
 * run tasks that print, return and fail with secrets (one single-line, one multi-line), and every place
 * a value is shown or stored is searched for each secret and each of its lines: `runs show --json`,
 * `tasks logs`, the task_instances / task_tries / task_logs rows, what a callback received as
 * `{{ error }}`, and the worker's own log. Also the CLI around secrets: `variables get --reveal`, export
 * and import keeping secrets secret, and keys that cannot be file names.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { E2eProject, runCli, tempDagsFolder, type CliResult } from '../helpers/cli.js';
import { requireService } from '../helpers/env.js';

const SINGLE = 'sgl-S3cret-Value-1';
const MULTI_LINES = ['ML-line-one-AAAA', 'ML-line-two-BBBB', 'ML-line-three-CC'];
const MULTI = MULTI_LINES.join('\n');

const DAGS = {
  'leaks.ts': `
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { dag } from 'airtasks';

const DIR = process.env.MASK_DIR ?? '/nonexistent';

export const leaks = dag('mask_leaks', {
  defaults: { retries: 0 },
  onRunFailure: 'echo "run failed: {{ error }}"',
});
// Reads both secrets, prints them, leaves them where bash finds them, and returns them (keys too).
const reads = leaks.node('reads', {
  run: async (ctx) => {
    const single = (await ctx.variable('mask_single'))!;
    const multi = (await ctx.variable('mask_multi'))!;
    ctx.log('single is', single);
    ctx.log('multi is', multi);
    writeFileSync(path.join(DIR, 'single'), single);
    writeFileSync(path.join(DIR, 'multi'), multi);
    return { single, multi, [single]: 'as a key', lines: multi.split('\\n') };
  },
  // A callback failing with a secret: the worker logs its error.
  onSuccess: async (ctx) => {
    throw new Error('callback saw ' + (await ctx.variable('mask_multi')));
  },
});
// Prints them whole, line by line, with CRLF line ends; its last line (its output) is a secret.
leaks.bash('echoes', {
  upstream: reads,
  command:
    'cat "$MASK_DIR/multi"; echo; while IFS= read -r l || [ -n "$l" ]; do echo "line: $l"; done < "$MASK_DIR/multi"; ' +
    'sed "s/$/\\\\r/" "$MASK_DIR/multi"; echo; echo "single: $(cat "$MASK_DIR/single")"; cat "$MASK_DIR/single"',
});
// Prints what its upstream returned.
leaks.bash('downstream', { upstream: reads, command: 'echo "got {{ outputs.reads | json }}"' });
// Fails with both secrets in its error; its callback prints the error and keeps it in a file.
leaks.node('throws', {
  upstream: reads,
  run: async (ctx) => {
    throw new Error('bad ' + (await ctx.variable('mask_single')) + ' and ' + (await ctx.variable('mask_multi')));
  },
  onFailure: 'echo "callback: {{ error }}"; printf "%s" "{{ error }}" > "$MASK_DIR/callback-error"',
});
`,
};

const KEY = randomBytes(32).toString('base64');

describe('e2e: secrets masked wherever a value is shown or stored', function () {
  this.timeout(120_000);
  const p = new E2eProject();
  let dir: string;

  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}, stdin?: string) =>
    runCli(args, { ...p.env, ...extra }, 60_000, { stdin });
  const ok = (r: CliResult) => {
    expect(r.code, r.stderr).to.equal(0);
    return r;
  };
  // oclif wraps a message over lines prefixed with ' › ': read it as one line.
  const message = (r: CliResult) => r.stderr.replace(/\s*\n\s*›\s*/g, ' ');

  before(async function () {
    await requireService(this, 'postgres');
    dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-mask-'));
    await p.create(DAGS, { AIRTASKS_SECRET_KEY: KEY, MASK_DIR: dir, AIRTASKS_LOG_LEVEL: 'debug' });
    ok(await cli(['variables', 'set', 'mask_single', SINGLE, '--secret']));
    ok(await cli(['variables', 'set', 'mask_multi', '-', '--secret'], {}, MULTI));
    ok(await cli(['variables', 'set', 'mask_plain', 'plain value']));
    await p.startEngine();
  });

  after(async () => {
    await p.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('masks secrets, whole and line by line, in runs show, task logs, stored rows, callbacks and the worker log', async () => {
    const run = await cli(['trigger', 'dag', 'mask_leaks', '--wait', '--json']);
    expect(run.code, run.stderr).to.equal(10);
    const runId = JSON.parse(run.stdout).runId as string;
    const show = ok(await cli(['runs', 'show', runId, '--json'])).stdout;
    const tasks = ['reads', 'echoes', 'downstream', 'throws', '@onRunFailure'];
    const logs: Record<string, string> = {};
    for (const t of tasks) logs[t] = ok(await cli(['tasks', 'logs', runId, t, '--json'])).stdout;
    const db = await p.db();
    const rows = async (sql: string) =>
      JSON.stringify((await db.query(sql.replace('$schema', `"${p.schema}"`), [runId])).rows);
    const stored = {
      task_instances: await rows(
        `SELECT task_id, output, error FROM $schema.task_instances WHERE run_id = $1`,
      ),
      task_tries: await rows(`SELECT task_id, error FROM $schema.task_tries WHERE run_id = $1`),
      task_logs: await rows(`SELECT task_id, line FROM $schema.task_logs WHERE run_id = $1`),
    };
    const callbackError = await readFile(path.join(dir, 'callback-error'), 'utf8');
    const workerLog = p.daemons[1]!.output;

    // What the tasks did is there, masked.
    const detail = JSON.parse(show) as {
      tasks: Array<{ taskId: string; state: string; output: unknown; error: string | null }>;
    };
    const task = (id: string) => detail.tasks.find((t) => t.taskId === id)!;
    expect(task('reads').state).to.equal('success');
    expect(task('reads').output).to.deep.equal({
      single: '***',
      multi: '***',
      '***': 'as a key',
      lines: ['***', '***', '***'],
    });
    expect(task('echoes').output).to.equal('***');
    expect(task('throws').error).to.equal('Error: bad *** and ***');
    expect(logs.reads).to.include('single is ***').and.include('multi is ***');
    expect(logs.echoes).to.include('line: ***').and.include('single: ***');
    expect(logs.downstream).to.include('got {').and.include('\\"single\\":\\"***\\"');
    expect(logs.throws).to.include('callback: Error: bad *** and ***');
    expect(logs['@onRunFailure']).to.include('run failed: failed tasks: throws (Error: bad *** and ***)');
    expect(callbackError).to.equal('Error: bad *** and ***');
    expect(workerLog).to.include('task finished').and.include('Error: bad *** and ***');
    expect(workerLog).to.include('task callback failed').and.include('callback saw ***');
    expect(logs.reads).to.include('[onSuccess] callback failed: Error: callback saw ***');

    const places: Record<string, string> = {
      'runs show --json': show,
      ...Object.fromEntries(tasks.map((t) => [`tasks logs ${t}`, logs[t]!])),
      ...stored,
      'the callback\u2019s {{ error }}': callbackError,
      'the worker log': workerLog,
    };
    const needles = [SINGLE, MULTI, MULTI.replaceAll('\n', '\r\n'), JSON.stringify(MULTI).slice(1, -1)];
    needles.push(...MULTI_LINES);
    for (const [where, text] of Object.entries(places))
      for (const n of needles) expect(text, `${where} holds ${JSON.stringify(n)}`).to.not.include(n);
  });

  it('prints a secret with variables get only with --reveal', async () => {
    const r = await cli(['variables', 'get', 'mask_single']);
    expect(r.code).to.equal(2);
    expect(r.stdout).to.equal('');
    expect(message(r)).to.include('variable "mask_single" is secret: add --reveal to print its value');
    expect(r.stderr).to.not.include(SINGLE);
    const j = await cli(['variables', 'get', 'mask_single', '--json']);
    expect(j.code).to.equal(2);
    expect(j.stdout).to.not.include(SINGLE);
    // It is refused before the key is needed: the key is not what is missing.
    expect(message(await cli(['variables', 'get', 'mask_single'], { AIRTASKS_SECRET_KEY: '' }))).to.include(
      '--reveal',
    );
    expect(ok(await cli(['variables', 'get', 'mask_single', '--reveal'])).stdout).to.equal(SINGLE + '\n');
    const jr = JSON.parse(ok(await cli(['variables', 'get', 'mask_multi', '--reveal', '--json'])).stdout);
    expect(jr).to.include({ key: 'mask_multi', value: MULTI, secret: true });
    // A plain variable needs no flag.
    expect(ok(await cli(['variables', 'get', 'mask_plain'])).stdout).to.equal('plain value\n');
  });

  it('warns that a secret shorter than 4 characters cannot be masked', async () => {
    try {
      const r = ok(await cli(['variables', 'set', 'mask_short', 'abc', '--secret']));
      expect(message(r)).to.include('secret "mask_short" is shorter than 4 characters: it cannot be masked');
      const long = ok(await cli(['variables', 'set', 'mask_long', 'abcd', '--secret']));
      expect(long.stderr).to.not.include('cannot be masked');
      const file = path.join(dir, 'short.json');
      await writeFile(file, JSON.stringify({ mask_short: { secret: true, value: 'xy' } }));
      const imp = ok(await cli(['variables', 'import', file]));
      expect(message(imp)).to.include('secret "mask_short" is shorter than 4 characters');
    } finally {
      await cli(['variables', 'delete', 'mask_short']);
      await cli(['variables', 'delete', 'mask_long']);
    }
  });

  it('exports secrets as secrets (encrypted, or in clear with --reveal) and imports them back as secrets', async () => {
    const plainOnly = JSON.parse(ok(await cli(['variables', 'export', '--json'])).stdout);
    expect(plainOnly).to.include({ mask_plain: 'plain value' });
    expect(plainOnly).to.not.have.property('mask_single');

    const sealed = ok(await cli(['variables', 'export', '--include-secrets'])).stdout;
    expect(sealed).to.not.include(SINGLE).and.not.include(MULTI_LINES[0]!);
    const sealedJson = JSON.parse(sealed);
    expect(sealedJson.mask_plain).to.equal('plain value');
    expect(sealedJson.mask_single).to.have.all.keys('secret', 'encrypted');
    expect(sealedJson.mask_single.secret).to.equal(true);
    expect(sealedJson.mask_single.encrypted).to.match(/^v1\./);

    const clear = JSON.parse(ok(await cli(['variables', 'export', '--include-secrets', '--reveal'])).stdout);
    expect(clear.mask_multi).to.deep.equal({ secret: true, value: MULTI });
    const reveal = await cli(['variables', 'export', '--reveal']);
    expect(reveal.code).to.equal(2);

    // Both forms come back as secret variables (the clear one encrypted with the configured key).
    for (const [name, exported] of [
      ['sealed', sealedJson],
      ['clear', clear],
    ]) {
      for (const k of ['mask_single', 'mask_multi', 'mask_plain']) ok(await cli(['variables', 'delete', k]));
      const file = path.join(dir, `${name}.json`);
      await writeFile(file, JSON.stringify(exported));
      const imp = ok(await cli(['variables', 'import', file, '--json']));
      expect(JSON.parse(imp.stdout), name).to.include({ imported: 3, secrets: 2 });
      const list = JSON.parse(ok(await cli(['variables', 'list', '--json'])).stdout) as Array<{
        key: string;
        value: string;
        secret: boolean;
      }>;
      const byKey = Object.fromEntries(list.map((v) => [v.key, v]));
      expect(byKey.mask_single, name).to.include({ value: '***', secret: true });
      expect(byKey.mask_multi, name).to.include({ value: '***', secret: true });
      expect(byKey.mask_plain, name).to.include({ value: 'plain value', secret: false });
      const got = ok(await cli(['variables', 'get', 'mask_multi', '--reveal', '--json'])).stdout;
      expect(JSON.parse(got).value, name).to.equal(MULTI);
      const row = await (
        await p.db()
      ).query(`SELECT encrypted, value FROM "${p.schema}".variables WHERE key = 'mask_single'`);
      expect(row.rows[0].encrypted, name).to.equal(true);
      expect(row.rows[0].value, name).to.not.include(SINGLE);
    }

    // An encrypted entry needs the key it was made with, and stays bound to its name.
    const renamed = path.join(dir, 'renamed.json');
    await writeFile(renamed, JSON.stringify({ other_name: sealedJson.mask_single }));
    const moved = await cli(['variables', 'import', renamed]);
    expect(moved.code).to.equal(2);
    expect(message(moved)).to.include('"other_name"');
    const otherKey = await cli(['variables', 'import', path.join(dir, 'sealed.json')], {
      AIRTASKS_SECRET_KEY: randomBytes(32).toString('base64'),
    });
    expect(otherKey.code).to.equal(2);
    expect(message(otherKey)).to.include('was encrypted with key');

    // An old export (key -> value, secrets in clear) still imports, as plain variables.
    const old = path.join(dir, 'old.json');
    await writeFile(old, JSON.stringify({ mask_old: 'old value', mask_old_json: { a: 1 } }));
    expect(JSON.parse(ok(await cli(['variables', 'import', old, '--json'])).stdout)).to.include({
      imported: 2,
      secrets: 0,
    });
    expect(ok(await cli(['variables', 'get', 'mask_old_json'])).stdout).to.equal('{"a":1}\n');
  });

  it('refuses keys that cannot be file names (exit 2), in set and import alike', async () => {
    for (const key of ['.', '..', 'a/b']) {
      const r = await cli(['variables', 'set', key, 'v']);
      expect(r.code, key).to.equal(2);
      expect(message(r), key).to.include(`invalid variable key "${key}"`);
    }
    const file = path.join(dir, 'dots.json');
    await writeFile(file, JSON.stringify({ fine: 'v', '..': 'v' }));
    const r = await cli(['variables', 'import', file]);
    expect(r.code).to.equal(2);
    expect(message(r)).to.include('invalid variable key ".."');
    expect(JSON.parse(ok(await cli(['variables', 'list', '--json'])).stdout)).to.not.deep.include({
      key: 'fine',
      value: 'v',
      secret: false,
      description: '',
    });
  });

  it('fails dags validate (exit 5) for a docker task whose variables cannot be file names', async () => {
    const dags = await tempDagsFolder({
      'bad_keys.ts': `
import { dag } from 'airtasks';
export const d = dag('mask_bad_keys');
d.docker('box', { image: 'alpine', variables: ['ok_key', '..'] });
d.docker('cased', { image: 'alpine', variables: ['Token', 'token'] });
`,
    });
    try {
      const r = await cli(['dags', 'validate'], { AIRTASKS_DAGS_FOLDER: dags.dir });
      expect(r.code, r.stdout + r.stderr).to.equal(5);
      const out = (r.stdout + r.stderr).replace(/\s*\n\s*›\s*/g, ' ');
      expect(out).to.include('task "box"').and.include('".."');
      expect(out).to.include('task "cased"').and.include('"Token" and "token"');
    } finally {
      await dags.remove();
    }
  });
});
