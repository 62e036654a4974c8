/**
 * Which bash commands are run without bash (plain-command.ts): only a plain program call, found as bash
 * would find it, that bash would only exec; everything else is left to bash.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { plainCommand } from '../../src/engine/operators/plain-command.js';

describe('plainCommand', function () {
  let dir: string;
  let bin: string;
  let env: Record<string, string>;

  before(function () {
    dir = mkdtempSync(path.join(tmpdir(), 'airtasks-plain-'));
    bin = path.join(dir, 'bin');
    mkdirSync(bin);
    mkdirSync(path.join(dir, 'work'));
    symlinkSync('/bin/true', path.join(bin, 'elf'));
    writeFileSync(path.join(bin, 'shebang'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
    writeFileSync(path.join(bin, 'bare-script'), 'echo hi\n', { mode: 0o755 });
    writeFileSync(path.join(bin, 'not-executable'), '#!/bin/sh\n', { mode: 0o644 });
    writeFileSync(path.join(dir, 'work', 'here'), '#!/bin/sh\n', { mode: 0o755 });
    // A folder named like a program earlier in PATH is skipped, as bash skips it.
    mkdirSync(path.join(dir, 'first'));
    mkdirSync(path.join(dir, 'first', 'elf'));
    env = { PATH: `${path.join(dir, 'first')}:${bin}:/usr/bin:/bin` };
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  const plain = (command: string, e: Record<string, string | undefined> = env) =>
    plainCommand(command, e, path.join(dir, 'work'));

  it('runs a binary or a #! script found in PATH directly, with the word as argv[0]', function () {
    expect(plain('elf')).to.deep.equal({ file: path.join(bin, 'elf'), argv0: 'elf', args: [] });
    expect(plain('  shebang  --epochs=3 a,b x:y 50% me@host +1 -v ')).to.deep.equal({
      file: path.join(bin, 'shebang'),
      argv0: 'shebang',
      args: ['--epochs=3', 'a,b', 'x:y', '50%', 'me@host', '+1', '-v'],
    });
    expect(plain('/bin/true')).to.deep.include({ file: '/bin/true', argv0: '/bin/true' });
  });

  it('resolves a path with a slash from the working directory, never from PATH; keeps it as written', function () {
    expect(plain('./here arg')).to.deep.equal({
      file: './here',
      argv0: './here',
      args: ['arg'],
    });
    expect(plain('here')).to.equal(null);
    expect(plain('work/elf')).to.equal(null);
    expect(plain('elf', { PATH: `:${bin}/` })).to.deep.include({ file: `${bin}/elf` });
    expect(plain('here', { PATH: `/nowhere::${bin}` })).to.deep.include({ file: './here' });
  });

  it('leaves to bash what bash runs itself: builtins, keywords, exported functions', function () {
    for (const c of [
      'true',
      'echo hi',
      'exit 3',
      'cd /tmp',
      'test -f x',
      '[ -f x ]',
      'time /bin/true',
      'kill 1',
    ])
      expect(plain(c), c).to.equal(null);
    expect(plain('elf', { ...env, 'BASH_FUNC_elf%%': '() { :; }' })).to.equal(null);
    expect(plain('/bin/true', { ...env, 'BASH_FUNC_true%%': '() { :; }' })).to.not.equal(null);
  });

  it('leaves to bash any quoting, expansion, redirection, operator or assignment', function () {
    const shell = [
      'elf "a b"',
      "elf 'a'",
      'elf a\\ b',
      'elf $HOME',
      'elf ${x}',
      'elf `date`',
      'elf *.csv',
      'elf a?',
      'elf [ab]',
      'elf ~',
      'elf {a,b}',
      'elf > out',
      'elf < in',
      'elf | elf',
      'elf; elf',
      'elf && elf',
      'elf &',
      '(elf)',
      'elf # comment',
      '! elf',
      'elf\nelf',
      'X=1 elf',
      'X=1',
      'elf é',
    ];
    for (const c of shell) expect(plain(c), c).to.equal(null);
  });

  it('leaves to bash a program it cannot run itself or cannot find, and an environment bash acts on', function () {
    expect(plain('bare-script'), 'no #!: bash runs it as a bash script').to.equal(null);
    expect(plain('not-executable')).to.equal(null);
    expect(plain('no-such-program')).to.equal(null);
    expect(plain('./missing')).to.equal(null);
    expect(plain('elf', {}), 'no PATH: bash has a default of its own').to.equal(null);
    expect(plain('')).to.equal(null);
    expect(plain('   ')).to.equal(null);
    for (const v of ['BASH_ENV', 'SHELLOPTS', 'BASHOPTS'])
      expect(plain('/bin/true', { ...env, [v]: 'x' }), v).to.equal(null);
  });
});
