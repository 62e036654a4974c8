/**
 * A bash task's command that is one plain program call (`/usr/bin/python3 train.py --epochs=3`) is run
 * without bash, as GNU make runs such recipe lines without a shell: `bash -c` would only exec the program
 * after its own start, about a millisecond of a core per task. Anything bash would treat otherwise goes to
 * bash: any quoting, expansion, redirection or operator character, an assignment, a builtin or keyword, an
 * exported function, a program that is neither a binary nor a `#!` script (bash runs those itself), a
 * program not found (bash prints the error and exits 127), or an environment that changes how bash starts.
 */
import { accessSync, closeSync, constants, openSync, readSync, statSync } from 'node:fs';
import path from 'node:path';

export interface PlainCommand {
  /** The program's path as bash would exec it: the word itself, or the PATH entry it was found in and the word. */
  file: string;
  /** argv[0] as bash passes it: the word as written. */
  argv0: string;
  args: string[];
}

/** Words of only these characters mean the same to bash as they read: no quoting, expansion or operator. */
const PLAIN_WORD = /^[A-Za-z0-9_./,:=+@%-]+$/;

/** Bash 5's builtins and reserved words (`compgen -b`, `compgen -k`): bash runs these itself. */
const BASH_OWN = new Set(
  (
    '. : [ alias bg bind break builtin caller cd command compgen complete compopt continue declare dirs ' +
    'disown echo enable eval exec exit export false fc fg getopts hash help history jobs kill let local ' +
    'logout mapfile popd printf pushd pwd read readarray readonly return set shift shopt source suspend ' +
    'test times trap true type typeset ulimit umask unalias unset wait ' +
    'if then else elif fi case esac for select while until do done in function time { } ! [[ ]] coproc'
  ).split(' '),
);

/** Variables with which bash runs something before the command, or traces it. */
const STARTUP_VARIABLES = ['BASH_ENV', 'SHELLOPTS', 'BASHOPTS'];

/** The program call `command` is, or null when it must go to bash. */
export function plainCommand(
  command: string,
  env: Record<string, string | undefined>,
  cwd: string,
): PlainCommand | null {
  const words = command.split(/[ \t]+/).filter((w) => w !== '');
  const [first, ...args] = words;
  if (first === undefined || !words.every((w) => PLAIN_WORD.test(w))) return null;
  if (first.includes('=') || STARTUP_VARIABLES.some((v) => env[v] !== undefined)) return null;
  if (!first.includes('/') && (BASH_OWN.has(first) || env[`BASH_FUNC_${first}%%`] !== undefined)) return null;
  const file = findProgram(first, env.PATH, cwd);
  return file && isExecutableFormat(path.resolve(cwd, file)) ? { file, argv0: first, args } : null;
}

/**
 * Bash's lookup: a word with a slash is a path (from the working directory), others are searched in PATH.
 * The path is kept as bash passes it to exec (a script's $0 is that path), relative ones included.
 */
function findProgram(word: string, PATH: string | undefined, cwd: string): string | null {
  if (word.includes('/')) return isExecutableFile(path.resolve(cwd, word)) ? word : null;
  // Without PATH bash searches a default of its own: leave that to bash.
  if (PATH === undefined) return null;
  for (const dir of PATH.split(':')) {
    const file = `${dir === '' ? '.' : dir.replace(/\/$/, '')}/${word}`;
    if (isExecutableFile(path.resolve(cwd, file))) return file;
  }
  return null;
}

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file, { throwIfNoEntry: false })?.isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false; // not executable, or a path through a file or an unreadable folder
  }
}

/**
 * A binary (ELF, Mach-O) or a `#!` script: the kernel runs these. A script without `#!` is run by bash
 * itself under `bash -c`, but by /bin/sh if exec'd through execvp: it must go to bash.
 */
function isExecutableFormat(file: string): boolean {
  const head = Buffer.alloc(4);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return false;
  }
  try {
    readSync(fd, head, 0, 4, 0);
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
  const magic = head.readUInt32BE(0);
  return (
    head.subarray(0, 2).toString('latin1') === '#!' ||
    magic === 0x7f454c46 || // ELF
    [0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe, 0xcafebabe].includes(magic) // Mach-O, universal
  );
}
