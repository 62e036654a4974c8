import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { RunInfo } from '../../src/engine/operators/types.js';
import { render, shquote, templateContext } from '../../src/engine/templates/render.js';

const run = (over: Partial<RunInfo> = {}): RunInfo => ({
  dagId: 'my_dag',
  runId: 'manual__2024-03-09T23:30:00.000Z',
  taskId: 'my_task',
  tryNumber: 2,
  logicalDate: new Date('2024-03-09T23:30:00.000Z'),
  conf: { name: 'world', n: 3, nested: { list: ['a', 'b'] } },
  outputs: new Map<string, unknown>([
    ['extract', 'rows.csv'],
    ['count', 42],
  ]),
  ...over,
});

const NASTY: string[] = [
  '',
  'plain',
  'two words',
  '  leading and trailing  ',
  "'",
  "''",
  "it's",
  "'\\''",
  "a'b'c'",
  '"',
  '"double" quoted',
  '\\',
  "\\'",
  '\\n is not a newline',
  '$HOME',
  '${HOME}',
  '$((1+1))',
  '$(rm -rf /)',
  '`rm -rf /`',
  '$(echo pwned > canary_subst)',
  '`echo pwned > canary_backtick`',
  "'; echo pwned > canary_semi; '",
  '"; echo pwned > canary_dq; "',
  'x > canary_redirect',
  'a && echo pwned > canary_and',
  'a | tee canary_pipe',
  'a\nb',
  '\n',
  'line\n\n',
  "multi\nline\n'quoted'\n$(x)\n",
  '\ttab\t',
  '*',
  '?',
  '[a-z]*',
  '~',
  '~root',
  '!!',
  '!$',
  '#comment',
  '-n',
  '--',
  '%s%d%%',
  '{a,b}',
  'a;b&c|d<e>f(g)h',
  'héllo ✓ 日本語 🚀',
  '\u0001\u0007\u001b[31m',
  "$'\\x41'",
  'IFS=x',
];

describe('shquote', () => {
  it('wraps a string in single quotes', () => {
    expect(shquote('abc')).to.equal("'abc'");
    expect(shquote('')).to.equal("''");
    expect(shquote('a b $c')).to.equal("'a b $c'");
  });

  it("writes a single quote as '\\''", () => {
    expect(shquote("it's")).to.equal("'it'\\''s'");
    expect(shquote("''")).to.equal("''\\'''\\'''");
  });

  it('quotes other values as their JSON', () => {
    expect(shquote(42)).to.equal("'42'");
    expect(shquote(true)).to.equal("'true'");
    expect(shquote(null)).to.equal("'null'");
    expect(shquote({ a: "it's" })).to.equal(`'{"a":"it'\\''s"}'`);
    expect(shquote(['x', 1])).to.equal(`'["x",1]'`);
  });

  it('quotes undefined as an empty word', () => {
    expect(shquote(undefined)).to.equal("''");
  });

  describe('in real bash', function () {
    let bash = '';
    let sandbox = '';
    let emptyPath = '';

    before(function () {
      bash = execFileSync('bash', ['-c', 'command -v bash'], { encoding: 'utf8' }).trim();
      expect(bash).to.match(/^\//);
      sandbox = mkdtempSync(join(tmpdir(), 'airtasks-shquote-'));
      emptyPath = join(sandbox, 'empty-path');
      mkdirSync(emptyPath);
    });

    after(function () {
      if (sandbox) rmSync(sandbox, { recursive: true, force: true });
    });

    /**
     * Runs a script in a sandbox directory. PATH points at an empty folder, so that even a quoting bug could not
     * run `rm` or any other program: printf, echo and redirections are bash builtins and still work.
     */
    const sh = (script: string): string =>
      execFileSync(bash, ['--norc', '--noprofile', '-c', script], {
        cwd: sandbox,
        env: { PATH: emptyPath, HOME: sandbox, LC_ALL: 'C.UTF-8' },
        encoding: 'utf8',
      });

    for (const s of NASTY) {
      it(`printf %s ${JSON.stringify(s)} gives the string back unchanged`, () => {
        expect(sh(`printf %s ${shquote(s)}`)).to.equal(s);
      });
    }

    it('keeps each quoted value one word, whatever it holds', () => {
      const words = ['a b', '', '*', "it's", 'x\ny', '$(echo hi)'];
      const out = sh(`printf '[%s]' ${words.map(shquote).join(' ')}`);
      expect(out).to.equal(words.map((w) => `[${w}]`).join(''));
    });

    it('keeps a quoted value intact when glued to other text', () => {
      expect(sh(`printf %s pre${shquote("'mid dle'")}post`)).to.equal("pre'mid dle'post");
    });

    it('round-trips JSON of a non-string value', () => {
      const v = { msg: "it's $(rm -rf /) `x`", n: [1, 2] };
      expect(JSON.parse(sh(`printf %s ${shquote(v)}`))).to.deep.equal(v);
    });

    it('is safe through the template filter too', () => {
      for (const msg of NASTY) {
        const cmd = render('printf %s {{ conf.msg | shquote }}', { conf: { msg } });
        expect(sh(cmd), JSON.stringify(msg)).to.equal(msg);
      }
    });

    it('the sandbox shows no sign of injected commands', () => {
      expect(readdirSync(sandbox)).to.deep.equal(['empty-path']);
    });

    it('the sandbox would catch an injection (control: an unquoted value does run)', () => {
      sh(`printf %s x > canary_control`);
      expect(readdirSync(sandbox)).to.include('canary_control');
      rmSync(join(sandbox, 'canary_control'));
    });
  });
});

describe('render', () => {
  it('returns text without template tags unchanged', () => {
    for (const t of ['echo hi', 'echo ${HOME} $x { } }} {', "awk '{ print $1 }'", '']) {
      expect(render(t, {})).to.equal(t);
    }
  });

  it('substitutes variables, nested fields and array items', () => {
    const ctx = { conf: { name: 'world', nested: { list: ['a', 'b'] } }, run_id: 'r1' };
    expect(render('hello {{ conf.name }} from {{ run_id }}', ctx)).to.equal('hello world from r1');
    expect(render('{{ conf.nested.list[1] }}{{ conf.nested.list | length }}', ctx)).to.equal('b2');
  });

  it('does not HTML-escape values (commands are not HTML)', () => {
    expect(render('echo {{ v }}', { v: `<a href="x">&'</a>` })).to.equal(`echo <a href="x">&'</a>`);
  });

  it('renders a missing value as empty text rather than failing', () => {
    expect(render('[{{ conf.missing }}][{{ nothing.at.all }}]', { conf: {} })).to.equal('[][]');
  });

  it('supports control tags', () => {
    const t = '{% for x in items %}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}';
    expect(render(t, { items: [1, 2, 3] })).to.equal('1,2,3');
    expect(render('{% if flag %}yes{% else %}no{% endif %}', { flag: false })).to.equal('no');
  });

  it('has a json filter', () => {
    expect(render('{{ conf | json }}', { conf: { b: [1, 'x'], a: null } })).to.equal(
      '{"b":[1,"x"],"a":null}',
    );
    expect(render('{{ s | json }}', { s: 'q"uote' })).to.equal('"q\\"uote"');
  });

  it('has a shquote filter', () => {
    expect(render('echo {{ v | shquote }}', { v: "it's" })).to.equal("echo 'it'\\''s'");
    expect(render('echo {{ n | shquote }}', { n: 5 })).to.equal("echo '5'");
  });

  it('throws on a template syntax error', () => {
    expect(() => render('echo {{ unclosed', {})).to.throw();
    expect(() => render('{% if x %}no end', {})).to.throw();
  });
});

describe('templateContext', () => {
  it('exposes the run, its conf and the upstream outputs', () => {
    const r = run();
    const ctx = templateContext(r);
    expect(ctx).to.deep.equal({
      conf: r.conf,
      params: r.conf,
      dag_run: { conf: r.conf, run_id: r.runId, logical_date: '2024-03-09T23:30:00.000Z' },
      run_id: r.runId,
      dag_id: 'my_dag',
      task_id: 'my_task',
      try_number: 2,
      logical_date: '2024-03-09T23:30:00.000Z',
      ts: '2024-03-09T23:30:00.000Z',
      ds: '2024-03-09',
      ds_nodash: '20240309',
      outputs: { extract: 'rows.csv', count: 42 },
    });
  });

  it('takes ds from the UTC date, whatever the local time zone', () => {
    const saved = process.env.TZ;
    try {
      for (const tz of ['Pacific/Kiritimati', 'Pacific/Pago_Pago', 'UTC']) {
        process.env.TZ = tz; // Node applies a new TZ at once
        const ctx = templateContext(run({ logicalDate: new Date('2024-12-31T23:59:59.999-05:00') }));
        expect(ctx.ds, tz).to.equal('2025-01-01');
        expect(ctx.ds_nodash, tz).to.equal('20250101');
        const late = templateContext(run({ logicalDate: new Date('2024-03-09T23:30:00.000Z') }));
        expect(late.ds, tz).to.equal('2024-03-09');
      }
      process.env.TZ = 'Pacific/Kiritimati';
      // Control: the local calendar date really differs there, so the check above means something.
      expect(new Date('2024-03-09T23:30:00.000Z').getDate()).to.equal(10);
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  it('has no outputs for a task without upstreams', () => {
    expect(templateContext(run({ outputs: new Map() })).outputs).to.deep.equal({});
  });

  it('renders a typical bash command', () => {
    const cmd = render(
      'process --date {{ ds }} --in {{ outputs.extract | shquote }} --n {{ outputs.count }} --who {{ params.name }} ' +
        '--try {{ try_number }} --run {{ dag_run.run_id }}',
      templateContext(run()),
    );
    expect(cmd).to.equal(
      "process --date 2024-03-09 --in 'rows.csv' --n 42 --who world --try 2 --run manual__2024-03-09T23:30:00.000Z",
    );
  });
});
