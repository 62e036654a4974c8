/**
 * Template values are data, never shell code: a corpus of hostile values through every quoting context a
 * command template can put them in, run by real bash (bash tasks, callbacks) and real sh (docker string
 * commands). Each payload would write a marker file if the shell ever ran it; none may appear, and benign
 * readings print the value exactly.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { render } from '../../src/engine/templates/render.js';
import {
  renderShellCommand,
  UnsafeTemplateError,
  VALUES_DIR_VARIABLE,
} from '../../src/engine/templates/shell-command.js';

/** Each writes a marker if run as code (builtins and redirections only: the sandbox's PATH is empty). */
const HOSTILE: string[] = [
  '$(echo x > m_subst)',
  '`echo x > m_backtick`',
  "'; echo x > m_semi_sq; '",
  '"; echo x > m_semi_dq; "',
  '"$(echo x > m_dq_subst)"',
  "'$(echo x > m_sq_subst)'",
  '\necho x > m_newline\n',
  'a\n$(echo x > m_newline_subst)\nb',
  'a;echo${IFS}x>m_ifs',
  '${IFS}$(echo${IFS}x>m_ifs_subst)',
  '\\"; echo x > m_backslash_dq; \\"',
  "\\'; echo x > m_backslash_sq; \\'",
  '\\$(echo x > m_backslash_subst)',
  'nul\u0000$(echo x > m_nul)',
  'A'.repeat(200_000) + '$(echo x > m_big)',
  '’; echo x > m_unicode_sq; ‘',
  '“$(echo x > m_unicode_dq)”',
  'a[$(echo x > m_subscript)]',
  "x' ; echo x > m_ansi ; $'",
  'EOF\necho x > m_heredoc\nEOF',
  '$((`echo x > m_arith`))',
  '*',
  '-n',
  '',
  '  spaced  out  ',
];

/** Templates in every quoting context, and what a benign reading prints for value `v` (null: not checked). */
const CONTEXTS: Array<{ template: string; prints: ((v: string) => string) | null; dialects: Dialect[] }> = [
  { template: 'printf %s {{ v }}', prints: (v) => v, dialects: ['bash', 'sh'] },
  { template: 'printf %s "{{ v }}"', prints: (v) => v, dialects: ['bash', 'sh'] },
  { template: "printf %s '{{ v }}'", prints: (v) => v, dialects: ['bash', 'sh'] },
  { template: "printf %s $'{{ v }}'", prints: (v) => v, dialects: ['bash'] },
  { template: 'printf %s "pre {{ v }} post"', prints: (v) => `pre ${v} post`, dialects: ['bash', 'sh'] },
  { template: 'printf %s \'a\'{{ v }}"b"', prints: (v) => `a${v}b`, dialects: ['bash', 'sh'] },
  { template: 'x={{ v }}; printf %s "$x"', prints: (v) => v, dialects: ['bash', 'sh'] },
  { template: 'export x="{{ v }}"; printf %s "$x"', prints: (v) => v, dialects: ['bash', 'sh'] },
  {
    template: 'printf %s "$(printf %s "{{ v }}")"',
    prints: (v) => v.replace(/\n+$/, ''),
    dialects: ['bash', 'sh'],
  },
  {
    template: 'printf %s "$(printf %s {{ v }})"',
    prints: (v) => v.replace(/\n+$/, ''),
    dialects: ['bash', 'sh'],
  },
  { template: 'printf %s "`printf %s {{ v }}`"', prints: null, dialects: ['bash', 'sh'] },
  { template: 'printf %s "${UNSET:-{{ v }}}"', prints: (v) => v, dialects: ['bash', 'sh'] },
  { template: 'printf %s ${UNSET:-"{{ v }}"}', prints: (v) => v, dialects: ['bash', 'sh'] },
  {
    template: 'while IFS= read -r l; do printf "%s|" "$l"; done <<EOF\n{{ v }}\nEOF',
    prints: (v) =>
      v
        .split('\n')
        .map((l) => `${l}|`)
        .join(''),
    dialects: ['bash', 'sh'],
  },
  { template: 'eval "printf %s {{ v }}"', prints: (v) => v, dialects: ['bash', 'sh'] },
  { template: 'eval \'printf %s "{{ v }}"\'', prints: (v) => v, dialects: ['bash', 'sh'] },
  { template: 'eval printf %s {{ v }}', prints: (v) => v, dialects: ['bash', 'sh'] },
  {
    template: `${process.env.BASH_PATH ?? '/bin/bash'} -c 'printf %s "{{ v }}"'`,
    prints: (v) => v,
    dialects: ['bash'],
  },
  { template: '/bin/sh -c "printf %s {{ v }}"', prints: (v) => v, dialects: ['bash', 'sh'] },
  { template: 'trap \'printf %s "{{ v }}"\' EXIT; :', prints: (v) => v, dialects: ['bash', 'sh'] },
  { template: 'printf ok # {{ v }}', prints: () => 'ok', dialects: ['bash', 'sh'] },
  { template: '[[ "{{ v }}" == "{{ v }}" ]] && printf same', prints: () => 'same', dialects: ['bash'] },
  { template: '[ "{{ v }}" = "{{ v }}" ] && printf same', prints: () => 'same', dialects: ['bash', 'sh'] },
  {
    template: 'case {{ v }} in "{{ v }}") printf match;; *) printf other;; esac',
    prints: () => 'match',
    dialects: ['bash', 'sh'],
  },
  { template: 'printf %s {{ v | shquote }}', prints: (v) => v, dialects: ['bash', 'sh'] },
  { template: 'printf %s "{{ v | shquote }}"', prints: (v) => v, dialects: ['bash', 'sh'] },
  { template: 'f() { printf %s "$1"; }; f {{ v }}', prints: (v) => v, dialects: ['bash', 'sh'] },
  { template: '{ printf %s {{ v }}; }', prints: (v) => v, dialects: ['bash', 'sh'] },
  { template: '( printf %s {{ v }} )', prints: (v) => v, dialects: ['bash', 'sh'] },
  {
    template: 'printf %s {{ v }} | { IFS= read -r -d "" x; printf %s "$x"; }',
    prints: null,
    dialects: ['bash'],
  },
  { template: 'for x in {{ v }}; do printf %s "$x"; done', prints: (v) => v, dialects: ['bash', 'sh'] },
  { template: 'printf %s {{ v }}{{ v }}', prints: (v) => v + v, dialects: ['bash', 'sh'] },
];

/** Arithmetic contexts: a value there must be an integer, anything else is refused before it runs. */
const ARITHMETIC = [
  'printf %s $(( {{ v }} + 1 ))',
  '(( x = {{ v }} )); printf %s "$x"',
  'let "x = {{ v }}"; printf %s "$x"',
  '[[ {{ v }} -eq 2 ]] && printf two',
  'a[{{ v }}]=1',
  'a=(1 2 3); printf %s "${a[{{ v }}]}"',
  'x=abcdef; printf %s "${x:{{ v }}}"',
  'declare -i x={{ v }}; printf %s "$x"',
];

type Dialect = 'bash' | 'sh';

/** A value as a failure message shows it: JSON, at most 80 characters. */
const short = (s: string) => JSON.stringify(s.length > 80 ? `${s.slice(0, 60)}...(${s.length} chars)` : s);

describe('template values in shell commands are data (hostile input)', function () {
  this.timeout(120_000);
  let sandbox = '';
  let emptyPath = '';
  let valuesDir = '';
  const shells: Record<Dialect, string> = { bash: '', sh: '' };

  before(() => {
    shells.bash = execFileSync('bash', ['-c', 'command -v bash'], { encoding: 'utf8' }).trim();
    shells.sh = '/bin/sh';
    sandbox = mkdtempSync(path.join(tmpdir(), 'airtasks-hostile-'));
    emptyPath = path.join(sandbox, 'empty-path');
    valuesDir = path.join(sandbox, 'values');
    mkdirSync(emptyPath);
  });

  after(() => {
    if (sandbox) rmSync(sandbox, { recursive: true, force: true });
  });

  /** Renders and runs a template as a task would: values in the environment, large ones in files. */
  function run(template: string, v: string, dialect: Dialect): string {
    const c = renderShellCommand(template, { v }, dialect);
    rmSync(valuesDir, { recursive: true, force: true });
    mkdirSync(valuesDir);
    for (const [name, content] of c.files) writeFileSync(path.join(valuesDir, name), content);
    const script = c.script.replace('/bin/bash -c', `${shells.bash} -c`);
    return execFileSync(shells[dialect], ['-c', script], {
      cwd: sandbox,
      env: { PATH: emptyPath, HOME: sandbox, LC_ALL: 'C.UTF-8', ...c.env, [VALUES_DIR_VARIABLE]: valuesDir },
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
  }

  const markers = () => readdirSync(sandbox).filter((f) => f.startsWith('m_'));

  for (const ctx of CONTEXTS) {
    for (const dialect of ctx.dialects) {
      it(`${dialect}: ${JSON.stringify(ctx.template)} prints each value as it is and runs none`, () => {
        for (const v of HOSTILE) {
          const out = run(ctx.template, v, dialect);
          const expected = v.replaceAll('\u0000', '\ufffd');
          if (ctx.prints && out !== ctx.prints(expected))
            expect.fail(`${short(v)} printed ${short(out)}, expected ${short(ctx.prints(expected))}`);
          expect(markers(), `${short(v)} ran`).to.deep.equal([]);
        }
      });
    }
  }

  for (const template of ARITHMETIC) {
    it(`bash: ${JSON.stringify(template)} takes an integer and refuses anything else before it runs`, () => {
      expect(() => run(template, '2', 'bash')).to.not.throw();
      for (const v of HOSTILE) {
        expect(() => renderShellCommand(template, { v }), short(v)).to.throw(
          UnsafeTemplateError,
          /must be an integer/,
        );
      }
      expect(markers()).to.deep.equal([]);
    });
  }

  it('refuses a value where no quoting makes it data: a quoted here-document, a declared name', () => {
    expect(() => renderShellCommand("cat <<'EOF'\n{{ v }}\nEOF", { v: 'x' })).to.throw(
      UnsafeTemplateError,
      /quoted here-document/,
    );
    expect(() => renderShellCommand('declare {{ v }}', { v: 'a[$(id)]=1' })).to.throw(
      UnsafeTemplateError,
      /only be the value of an assignment/,
    );
  });

  it('passes a shell reading a quoted here-document the value as data too', () => {
    for (const v of HOSTILE.slice(0, 12)) {
      const out = run(`${shells.bash} <<'EOF'\nprintf %s "{{ v }}"\nEOF`, v, 'bash');
      expect(out).to.equal(v);
    }
    expect(markers()).to.deep.equal([]);
  });

  it('pastes text as code only when the author says so (| shell_code)', () => {
    expect(run('{{ v | shell_code }}', 'printf %s pasted', 'bash')).to.equal('pasted');
  });

  it('shows the command with its values in the log line, and runs references', () => {
    const c = renderShellCommand('echo "hello {{ conf.name }}"', { conf: { name: '$(id)' } });
    expect(c.display).to.equal('echo "hello $(id)"');
    expect(c.script).to.equal('echo "hello ${AIRTASKS_VALUE_1}"');
    expect(c.env).to.deep.equal({ AIRTASKS_VALUE_1: '$(id)' });
    expect(run('echo "hello {{ v }}"', 'Bob', 'bash')).to.equal('hello Bob\n');
  });

  it('keeps templates away from Node (no constructor, no prototype, no properties of functions)', () => {
    for (const t of [
      '{{ range.constructor("return process")() }}',
      '{{ range["constr" + "uctor"]("return process")() }}',
      '{{ v.constructor.constructor("return process")() }}',
      '{{ cycler.constructor("return 1")() }}',
      '{{ joiner.__proto__.constructor("return 1")() }}',
    ]) {
      expect(() => render(t, { v: 'x' }), t).to.throw(/undefined or falsey|not a function/);
    }
    expect(render('{{ v.__proto__ }}{{ v.prototype }}{{ range.name }}', { v: 'x' })).to.equal('');
    expect(
      render('{{ v.toUpperCase() }} {{ v.length }} {{ l | join(",") }}', { v: 'ab', l: [1, 2] }),
    ).to.equal('AB 2 1,2');
  });

  it('the sandbox would catch an injection (control: a value pasted as code does run)', () => {
    run('{{ v | shell_code }}', 'echo x > m_control', 'bash');
    expect(markers()).to.deep.equal(['m_control']);
    rmSync(path.join(sandbox, 'm_control'));
  });
});
