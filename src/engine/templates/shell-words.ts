/** The words of a simple command, and what each is to the shell: code again, arithmetic, or plain data. */
import { PLACEHOLDER_START, UnsafeTemplateError } from './shell-placeholders.js';

export const SHELLS = new Set(['bash', 'sh', 'dash', 'ash', 'ksh', 'mksh', 'zsh', 'busybox']);
/** Words that run the rest of the command as a command of its own. */
const WRAPPERS = new Set(['exec', 'command', 'builtin', 'nohup', 'time', 'sudo', 'env', 'timeout', 'nice']);
const DECLARERS = new Set(['declare', 'typeset', 'local', 'readonly', 'export']);
const ARITH_TESTS = new Set(['-eq', '-ne', '-lt', '-le', '-gt', '-ge']);
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A word of a simple command as read: what it becomes in the output, and its text for an inner shell. */
export interface Word {
  out: string;
  /** The word as the shell would pass it on (quotes removed, expansions kept as text); placeholders kept. */
  inner: string;
  /** Placeholders in the word, with the spot each was in (for a word that is handed on as code). */
  values: number[];
  /** Whether the word began unquoted with `name=` (an assignment). */
  start: number;
}

export interface CommandRoles {
  cmd: string;
  /** Words the command runs as code again. */
  code: Set<Word>;
  /** Words the command evaluates as arithmetic. */
  integer: Set<Word>;
}

/** The words of a command that are not assignments before it or redirections. */
export function commandWords(words: Word[]): Word[] {
    const real = words.filter((w) => w.start >= 0);
    let k = 0;
    while (k < real.length && /^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=/.test(real[k]!.inner)) k++;
    return real.slice(k);
}

/** A shell reading a script from its standard input (`bash`, `sh -s`): a here-document it reads is code. */
export function readsCodeFromStdin(words: Word[]): boolean {
    const args = commandWords(words);
    if (args.length === 0 || !SHELLS.has(basename(args[0]!.inner))) return false;
    return !args.slice(1).some((w) => !w.inner.startsWith('-') || /^-[A-Za-z]*c/.test(w.inner));
}

/**
 * What the words of one simple command are to the shell: the command that runs (past wrappers such as
 * sudo, env X=1, timeout 5), the words it runs as code again (eval's arguments, trap's action, the script
 * of a shell's -c), and the words it evaluates as arithmetic (let, declare -i, [[ a -eq b ]]). Refuses a
 * value as a declared name.
 */
export function rolesOf(words: Word[]): CommandRoles {
    const args = commandWords(words);
    const code = new Set<Word>();
    const integer = new Set<Word>();
    // Skip wrappers (sudo, env X=1, timeout 5, nohup ...) to find the command that runs.
    let k = 0;
    while (k < args.length && WRAPPERS.has(basename(args[k]!.inner))) {
      k++;
      while (k < args.length && (args[k]!.inner.startsWith('-') || /^[A-Za-z_]\w*=/.test(args[k]!.inner) || /^\d/.test(args[k]!.inner)))
        k++;
    }
    const cmd = args[k] ? basename(args[k]!.inner) : '';
    const rest = args.slice(k + 1);
    if (cmd === 'eval') for (const w of rest) code.add(w);
    else if (cmd === 'trap') {
      const action = rest.find((w) => !w.inner.startsWith('-'));
      if (action) code.add(action);
    } else if (SHELLS.has(cmd)) {
      let sawC = false;
      for (let j = 0; j < rest.length; j++) {
        const a = rest[j]!.inner;
        if (a === '-o' || a === '+o') {
          j++;
          continue;
        }
        if (/^-[A-Za-z]*c[A-Za-z]*$/.test(a)) {
          sawC = true;
          continue;
        }
        if (a.startsWith('-') || a.startsWith('+')) continue;
        if (sawC) code.add(rest[j]!);
        break;
      }
    } else if (cmd === 'let') for (const w of rest) integer.add(w);
    else if (DECLARERS.has(cmd)) {
      const opts = rest.filter((w) => /^[-+][A-Za-z]+$/.test(w.inner)).map((w) => w.inner);
      const ints = opts.some((o) => o.startsWith('-') && o.includes('i'));
      for (const w of rest) {
        if (w.values.length === 0) continue;
        const eq = w.inner.indexOf('=');
        const nameOk = eq > 0 && IDENT.test(w.inner.slice(0, eq)) && !w.inner.slice(0, eq).includes(PLACEHOLDER_START);
        if (!nameOk)
          throw new UnsafeTemplateError(
            `a template value in an argument of ${cmd} can only be the value of an assignment (${cmd} name={{ ... }}): ` +
              `as a name it could declare an array element whose subscript the shell evaluates`,
          );
        if (ints) integer.add(w);
      }
    } else if (cmd === '[[') {
      for (let j = 0; j < rest.length; j++) {
        const w = rest[j]!;
        if (w.values.length === 0) continue;
        if (ARITH_TESTS.has(rest[j - 1]?.inner ?? '') || ARITH_TESTS.has(rest[j + 1]?.inner ?? '')) integer.add(w);
      }
    }
    return { cmd, code, integer };
}

export function basename(word: string): string {
  return word.slice(word.lastIndexOf('/') + 1);
}
