/**
 * The bash operator with real processes: a plain program call (run without bash) behaves as it does under
 * `bash -c`: output, exit status, signals, environment, working directory, timeouts of its whole group.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { dag } from '../../src/engine/dag/builder.js';
import { bashOperator } from '../../src/engine/operators/bash.js';
import { TaskLost, type OperatorContext } from '../../src/engine/operators/types.js';
import { alive, hostsOf } from '../helpers/processes.js';
import { waitFor } from '../helpers/engine.js';
import { fails } from '../helpers/operators.js';

interface Line {
  stream: 'stdout' | 'stderr' | 'system';
  line: string;
}

function context(command: string, opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const g = dag('bash_operator_test');
  g.bash('t', { command, ...opts });
  const serialized = g.serialize();
  const lines: Line[] = [];
  const abort = new AbortController();
  const ctx: OperatorContext = {
    dag: serialized,
    task: serialized.tasks[0]!,
    run: {
      dagId: 'bash_operator_test',
      runId: 'manual__1',
      taskId: 't',
      tryNumber: 1,
      logicalDate: new Date('2026-01-02T03:04:05Z'),
      conf: { n: 1 },
      outputs: new Map(),
    },
    log: {
      stdout: (line) => lines.push({ stream: 'stdout', line }),
      stderr: (line) => lines.push({ stream: 'stderr', line }),
      system: (line) => lines.push({ stream: 'system', line }),
    },
    signal: abort.signal,
    dagsFolder: folder,
    variable: () => Promise.resolve(undefined),
  };
  return { ctx, lines, abort };
}

let folder: string;

/** The pid tree.sh writes down for its background sleep, once it has. */
function pidWrittenTo(file: string): Promise<number> {
  return waitFor(async () => {
    const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    return pid > 0 ? pid : undefined;
  }, `a pid in ${file}`);
}

describe('bash operator', function () {
  this.timeout(20_000);

  before(function () {
    folder = mkdtempSync(path.join(tmpdir(), 'airtasks-bashop-'));
    // A #! script (run directly) that shows what it was started with.
    writeFileSync(
      path.join(folder, 'show.sh'),
      '#!/bin/bash\necho "argv0=$0 args=$* pwd=$(pwd) PWD=$PWD task=$AIRTASKS_TASK_ID x=$X"\necho last >&2\n',
      { mode: 0o755 },
    );
    writeFileSync(path.join(folder, 'status.sh'), '#!/bin/bash\nexit "$1"\n', { mode: 0o755 });
    writeFileSync(path.join(folder, 'killself.sh'), '#!/bin/bash\nkill -KILL $$\n', { mode: 0o755 });
    writeFileSync(path.join(folder, 'bashism'), '[[ -n x ]] && echo "bash ran me"\n', { mode: 0o755 });
    writeFileSync(path.join(folder, 'tree.sh'), '#!/bin/bash\nsleep 300 &\necho $! > "$1"\nwait\n', {
      mode: 0o755,
    });
  });

  after(() => rmSync(folder, { recursive: true, force: true }));

  it('cuts a 300 MB line at the bound instead of holding it, and goes on with the next lines', async function () {
    this.timeout(120_000);
    const { ctx, lines } = context('head -c 300000000 /dev/zero | tr "\\0" a; echo; echo after');
    const r = await bashOperator.execute(ctx);
    expect(r.output).to.equal('after');
    const cut = lines.find((l) => l.line.includes('[airtasks: line cut'));
    expect(cut?.line).to.match(
      /^a{1048576} \[airtasks: line cut at 1048576 characters, 298951424 more dropped\]$/,
    );
  });

  it('runs a plain program call with the same argv, environment, directory and streams as bash -c', async function () {
    const sub = path.join(folder, 'sub');
    mkdirSync(sub);
    const direct = context('../show.sh a b=c', { cwd: sub, env: { X: 'y' } });
    const viaBash = context('../show.sh a "b=c"', { cwd: sub, env: { X: 'y' } });
    const a = await bashOperator.execute(direct.ctx);
    const b = await bashOperator.execute(viaBash.ctx);
    expect(a.output).to.equal(`argv0=../show.sh args=a b=c pwd=${sub} PWD=${sub} task=t x=y`);
    expect(a.output).to.equal(b.output);
    expect(direct.lines.filter((l) => l.stream !== 'system')).to.deep.equal(
      viaBash.lines.filter((l) => l.stream !== 'system'),
    );
    expect(direct.lines[0]).to.deep.equal({ stream: 'system', line: '$ ../show.sh a b=c' });
  });

  it('gives the command the AIRTASKS_* environment, the worker id included', async function () {
    const direct = context('printenv AIRTASKS_WORKER_ID');
    const viaBash = context('echo "$AIRTASKS_WORKER_ID $AIRTASKS_TRY_NUMBER $AIRTASKS_CONF"');
    expect((await bashOperator.execute({ ...direct.ctx, workerId: 'worker-7' })).output).to.equal('worker-7');
    expect((await bashOperator.execute({ ...viaBash.ctx, workerId: 'worker-7' })).output).to.equal(
      'worker-7 1 {"n":1}',
    );
  });

  it('fails with the exit status, and with the signal as bash reports it', async function () {
    const e = await fails(bashOperator.execute(context('./status.sh 3').ctx));
    expect(e.message).to.equal('bash exited with code 3');
    expect(e.exitCode).to.equal(3);
    const k = await fails(bashOperator.execute(context('./killself.sh').ctx));
    expect(k.message).to.equal('bash was killed by signal 9');
    expect(k.exitCode).to.equal(137);
  });

  it('leaves to bash what only bash does: a missing program, a script without #!, builtins', async function () {
    const missing = context('no-such-program-here');
    const e = await fails(bashOperator.execute(missing.ctx));
    expect(e.exitCode).to.equal(127);
    expect(missing.lines.map((l) => l.line).join('\n')).to.match(/no-such-program-here: command not found/);
    expect((await bashOperator.execute(context('./bashism').ctx)).output).to.equal('bash ran me');
    expect((await bashOperator.execute(context('echo {{ conf.n }}').ctx)).output).to.equal('1');
  });

  it('stops a plain program call and what it started when the try is aborted', async function () {
    const pidFile = path.join(folder, 'tree.pid');
    const t = context(`./tree.sh ${pidFile}`);
    const p = bashOperator.execute(t.ctx);
    const sleeper = await pidWrittenTo(pidFile);
    expect(await alive(sleeper)).to.equal(true);
    t.abort.abort('timed out after 1 ms');
    const e = await fails(p);
    expect(e.message).to.equal('stopped: timed out after 1 ms');
    await waitFor(async () => !(await alive(sleeper)), 'the background sleep to be killed');
  });

  it('stops a command aborted before the host has told its pid', async function () {
    const t = context('/bin/sleep 30');
    const started = Date.now();
    const p = bashOperator.execute(t.ctx);
    t.abort.abort('cancelled');
    const e = await fails(p);
    expect(e.message).to.equal('stopped: cancelled');
    expect(Date.now() - started).to.be.below(10_000);
  });

  it('fails a command the system refuses to start (E2BIG) with a clear message; the host goes on', async function () {
    const t = context('echo "$BIG" | head -c 10');
    // One variable over Linux's 128 KiB cap (a task's own env; a large conf goes to a file, see below).
    (t.ctx.task.args as { env?: Record<string, string> }).env = { BIG: 'L'.repeat(200_000) };
    const before = await hostsOf(process.pid);
    const e = await fails(bashOperator.execute(t.ctx));
    expect(e).to.not.be.instanceOf(TaskLost);
    expect(e.message).to.match(/^bash could not be started: spawn E2BIG \(the command or its environment/);
    expect((await bashOperator.execute(context('/bin/echo fine').ctx)).output).to.equal('fine');
    if (before.length) expect(await hostsOf(process.pid)).to.deep.equal(before);
  });

  it('prints a hostile conf value as data in every quoting (the README example included), running none of it', async function () {
    const marker = path.join(folder, 'pwned');
    for (const v of [
      `$(touch ${marker})`,
      `'; touch ${marker}; '`,
      `"; touch ${marker}; "`,
      `\ntouch ${marker}\n`,
    ]) {
      const t = context(
        `echo "hello {{ conf.name }}"; echo "hello {{ conf.name | shquote }}"; echo {{ conf.name }}; echo '{{ conf.name }}'`,
      );
      t.ctx.run.conf = { name: v };
      await bashOperator.execute(t.ctx);
      const out = t.lines
        .filter((l) => l.stream === 'stdout')
        .map((l) => l.line)
        .join('\n');
      expect(out).to.equal([`hello ${v}`, `hello ${v}`, v, v].join('\n'));
      // The log shows the command as written, values in place.
      expect(t.lines[0]).to.deep.equal({
        stream: 'system',
        line: `$ echo "hello ${v}"; echo "hello ${v}"; echo ${v}; echo '${v}'`,
      });
      expect(existsSync(marker), JSON.stringify(v)).to.equal(false);
    }
  });

  it('fails a template that puts a value where it cannot be data, before running anything', async function () {
    const t = context('echo $(( {{ conf.n }} + 1 ))');
    t.ctx.run.conf = { n: 'a[$(id)]' };
    const e = await fails(bashOperator.execute(t.ctx));
    expect(e.message).to.match(/^the command template: a template value used in arithmetic/);
    expect(t.lines.filter((l) => l.stream === 'stdout')).to.deep.equal([]);
  });

  it('passes a conf too large for the environment as AIRTASKS_CONF_FILE, and removes the file after', async function () {
    const t = context(
      'test -z "${AIRTASKS_CONF:-}" && cat "$AIRTASKS_CONF_FILE" | wc -c && echo "$AIRTASKS_CONF_FILE"',
    );
    t.ctx.run.conf = { v: 'L'.repeat(200_000) };
    const r = await bashOperator.execute(t.ctx);
    const out = t.lines.filter((l) => l.stream === 'stdout').map((l) => l.line);
    expect(Number(out[0])).to.equal(JSON.stringify(t.ctx.run.conf).length);
    expect(existsSync(String(r.output))).to.equal(false);
  });

  it('relays every line of a loud command, in order per stream, and its last stdout line', async function () {
    const t = context(
      'for i in $(seq 1 5000); do echo "out $i"; echo "err $i" >&2; done; printf "no newline at the end"',
    );
    const r = await bashOperator.execute(t.ctx);
    expect(r.output).to.equal('no newline at the end');
    const out = t.lines.filter((l) => l.stream === 'stdout').map((l) => l.line);
    const err = t.lines.filter((l) => l.stream === 'stderr').map((l) => l.line);
    expect(out).to.have.length(5001);
    expect(err).to.deep.equal(Array.from({ length: 5000 }, (_, i) => `err ${i + 1}`));
    expect(out.slice(0, 5000)).to.deep.equal(Array.from({ length: 5000 }, (_, i) => `out ${i + 1}`));
  });

  it('a process host that ends takes its commands with it, as lost tries, and the next command starts a new one', async function () {
    const pidFile = path.join(folder, 'lost.pid');
    const t = context(`./tree.sh ${pidFile}`);
    const p = bashOperator.execute(t.ctx);
    const sleeper = await pidWrittenTo(pidFile);
    const [host] = await hostsOf(process.pid);
    expect(host, 'the process host').to.be.a('number');
    process.kill(host!, 'SIGKILL');
    const e = await fails(p);
    expect(e).to.be.instanceOf(TaskLost);
    expect(e.message).to.match(/process host ended/);
    await waitFor(async () => !(await alive(sleeper)), "the command's processes to be killed");
    expect((await bashOperator.execute(context('/bin/echo again').ctx)).output).to.equal('again');
    const hosts = await hostsOf(process.pid);
    expect(hosts).to.have.length(1);
    expect(hosts[0]).to.not.equal(host);
  });
});
