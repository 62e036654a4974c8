/**
 * Shell commands from templates, with every value passed as data: `echo "hello {{ conf.name }}"` runs as
 * `echo "hello ${AIRTASKS_VALUE_1}"` with AIRTASKS_VALUE_1=Bob in the command's environment, so a conf of
 * `$(id)` prints `hello $(id)` instead of running `id`. Where each reference goes and how it is quoted is
 * decided by reading the rendered command as the shell will (shell-quoting.ts). `{{ x | shell_code }}` is
 * the author's explicit way to paste text as code.
 */
import { Quoted, ShellCode } from './render.js';
import { isTemplate, renderWith, textOf } from './sandbox.js';
import {
  PLACEHOLDER_END,
  PLACEHOLDER_START,
  UnsafeTemplateError,
  type Dialect,
} from './shell-placeholders.js';
import { quoteCommand } from './shell-quoting.js';

export { UnsafeTemplateError };

/** Values up to this size go in the environment; larger ones in files (one string is capped at 128 KiB). */
const ENV_VALUE_MAX = 32 * 1024;
/** The environment's share of all values together (the whole environment and arguments share ~2 MiB). */
const ENV_TOTAL_MAX = 256 * 1024;

export interface ShellCommand {
  /** What the shell runs. */
  script: string;
  /** Variables that hold the values: added to the command's environment. */
  env: Record<string, string>;
  /**
   * Values too large for the environment, by file name: the caller writes them into a folder and sets
   * AIRTASKS_VALUES_DIR to it (the script reads them first).
   */
  files: Map<string, string>;
  /** The command with the values written into it: for the task log, never run. */
  display: string;
}

export const VALUES_DIR_VARIABLE = 'AIRTASKS_VALUES_DIR';

const valueName = (i: number) => `AIRTASKS_VALUE_${i + 1}`;

/** Renders a shell command template; throws UnsafeTemplateError for a value in a spot it cannot make safe. */
export function renderShellCommand(
  template: string,
  context: Record<string, unknown>,
  dialect: Dialect = 'bash',
): ShellCommand {
  if (!isTemplate(template)) return { script: template, env: {}, files: new Map(), display: template };
  if (template.includes(PLACEHOLDER_START) || template.includes(PLACEHOLDER_END))
    throw new UnsafeTemplateError('the command holds characters U+E000/U+E001, which airtasks reserves');
  const values: string[] = [];
  const rendered = renderWith(template, context, (v) => {
    if (v instanceof ShellCode) return v.text;
    const text = textOf(v instanceof Quoted ? v.value : v).replaceAll('\u0000', '\ufffd');
    values.push(text);
    return `${PLACEHOLDER_START}${values.length - 1}${PLACEHOLDER_END}`;
  });
  const display = rendered.replace(/\uE000(\d+)\uE001/g, (_, i: string) => values[Number(i)]!);
  if (values.length === 0) return { script: rendered, env: {}, files: new Map(), display };
  // Which values fit in the environment, and which go to files (read by the script before it runs).
  const env: Record<string, string> = {};
  const files = new Map<string, string>();
  let total = 0;
  values.forEach((v, i) => {
    if (Buffer.byteLength(v) <= ENV_VALUE_MAX && total + v.length <= ENV_TOTAL_MAX) {
      env[valueName(i)] = v;
      total += v.length;
    } else files.set(valueName(i), v);
  });
  const readsOf = (indexes: number[], how: Dialect) =>
    [...new Set(indexes.map(valueName))]
      .filter((n) => files.has(n))
      .map((n) => readFile(n, how))
      .join('\n');
  const { script, integers } = quoteCommand(rendered, dialect, {
    name: valueName,
    readInInnerShell: (indexes) => readsOf(indexes, 'sh'),
  });
  for (const i of integers) {
    const v = values[i]!;
    if (!/^[-+]?[0-9]+$/.test(v.trim()))
      throw new UnsafeTemplateError(
        `a template value used in arithmetic ($((...)), ((...)), let, [[ -eq ]], an array subscript, declare -i) ` +
          `must be an integer, and this one is not: ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v)}`,
      );
  }
  const reads = readsOf(
    values.map((_, i) => i),
    dialect,
  );
  return { script: reads ? `${reads}\n${script}` : script, env, files, display };
}

/**
 * Reads a value from its file into a shell variable, exactly (every newline kept), with builtins only: bash
 * reads to the end at once; POSIX sh line by line, the last line (with no newline after it) left in `__l`.
 */
function readFile(name: string, dialect: Dialect): string {
  const file = `"$${VALUES_DIR_VARIABLE}/${name}"`;
  if (dialect === 'bash') return `IFS= read -r -d '' ${name} < ${file} || :`;
  return (
    `${name}=; while IFS= read -r __l; do ${name}="$${name}$__l\n"; done < ${file}; ` +
    `${name}="$${name}$__l"; unset __l`
  );
}
