/**
 * Long because: one reader of shell syntax, its parts calling each other over one cursor.
 *
 * Where a template value lands in a shell command, and what to write there instead of the value: a reference
 * to an environment variable that holds it (`"${AIRTASKS_VALUE_1}"`), quoted for the spot it is in. The shell
 * then expands the variable as data, never parsing the value as shell code, whatever the author's quoting.
 *
 * The command is read once, as bash (or POSIX sh) reads it: quotes, `$'...'`, `$(...)`, backticks, `${...}`,
 * arithmetic, here-documents, comments. Two kinds of spot need more than a reference:
 * - arithmetic (`$((...))`, `((...))`, `let`, `[[ a -eq b ]]`, array subscripts, `${x:offset}`, `declare -i`):
 *   bash evaluates an expanded value there as an expression, and `a[$(cmd)]` in it runs `cmd`, so a value
 *   there must be an integer;
 * - code handed to a shell again (`eval`, `trap`, `bash -c`/`sh -c`, a shell reading a here-document): the
 *   inner code is read the same way, recursively, and passed on single-quoted, so the inner shell expands the
 *   reference itself. Other programs that take code as an argument (`python -c`, `ssh`) get the value inside
 *   their code: the docs say to read it from the environment there.
 * A spot that cannot be made safe (a quoted here-document, a value as a variable's name) is refused with a
 * message saying why, before anything runs.
 */
import {
  PLACEHOLDER_END,
  PLACEHOLDER_START,
  placeholdersIn,
  UnsafeTemplateError,
  type Dialect,
  type QuoteOptions,
  type QuotedCommand,
} from './shell-placeholders.js';
import { commandWords, readsCodeFromStdin, rolesOf, type Word } from './shell-words.js';

/** Replaces the placeholders of a rendered command by references to their variables, quoted for their spot. */
export function quoteCommand(text: string, dialect: Dialect, o: QuoteOptions): QuotedCommand {
  const integers = new Set<number>();
  const script = new Scanner(text, dialect, o, integers).script();
  return { script, integers };
}

type Spot = 'unquoted' | 'double' | 'single' | 'ansi' | 'bare';

interface PendingHeredoc {
  delimiter: string;
  quoted: boolean;
  stripTabs: boolean;
  /** The command reading it is a shell: its body is code. */
  code: boolean;
}

class Scanner {
  private i = 0;
  /** Inside `...`: a reference is left unquoted there (nested double quotes are not portable). */
  private backticks = 0;
  private readonly associative = new Set<string>();

  constructor(
    private readonly s: string,
    private readonly dialect: Dialect,
    private readonly o: QuoteOptions,
    private readonly integers: Set<number>,
  ) {
    // Subscripts of associative arrays are strings, not arithmetic.
    for (const m of s.matchAll(/\b(?:declare|typeset|local)\s+-[A-Za-z]*A[A-Za-z]*\s+([A-Za-z_][A-Za-z0-9_]*)/g))
      this.associative.add(m[1]!);
  }

  script(): string {
    return this.commands(null);
  }

  private peek(k = 0): string {
    return this.s[this.i + k] ?? '';
  }

  private startsWith(t: string): boolean {
    return this.s.startsWith(t, this.i);
  }

  private ref(index: number, spot: Spot): string {
    const r = `\${${this.o.name(index)}}`;
    switch (spot) {
      case 'unquoted':
        return this.backticks > 0 ? r : `"${r}"`;
      case 'double':
      case 'bare':
        return r;
      case 'single':
        return `'"${r}"'`;
      case 'ansi':
        return `'"${r}"$'`;
    }
  }

  /** Reads a placeholder at the cursor, if there is one. */
  private placeholder(): number | null {
    if (this.peek() !== PLACEHOLDER_START) return null;
    const end = this.s.indexOf(PLACEHOLDER_END, this.i);
    const index = Number(this.s.slice(this.i + 1, end));
    this.i = end + 1;
    return index;
  }

  /**
   * Commands until `end` (`)` of `$(`, a backtick, or the end of the text), each a list of words between
   * operators. Returns the output text.
   */
  private commands(end: ')' | '`' | null): string {
    let out = '';
    let words: Word[] = [];
    let depth = 0;
    let heredocs: PendingHeredoc[] = [];
    let sep = '';
    const flush = () => {
      out += sep + this.emitCommand(words);
      words = [];
      sep = '';
    };
    while (this.i < this.s.length) {
      const c = this.peek();
      if (end === ')' && c === ')' && depth === 0) break;
      if (end === '`' && c === '`') break;
      if (c === '\n') {
        flush();
        out += '\n';
        this.i++;
        if (heredocs.length > 0) out += this.heredocBodies(heredocs);
        heredocs = [];
        continue;
      }
      if (c === ' ' || c === '\t') {
        sep += c;
        this.i++;
        continue;
      }
      if (c === '#' && (words.length === 0 || sep !== '')) {
        // A comment (at the start of a word): inert, but a value in it is still not pasted.
        let text = sep;
        sep = '';
        while (this.i < this.s.length && this.peek() !== '\n') {
          const p = this.placeholder();
          if (p !== null) text += this.ref(p, 'bare');
          else text += this.s[this.i++];
        }
        flush();
        out += text;
        continue;
      }
      // (( ... )) where a command starts: arithmetic.
      if (words.length === 0 && this.startsWith('((')) {
        flush();
        this.i += 2;
        out += '((' + this.arithmetic('))') + '))';
        continue;
      }
      const op = /^(?:&&|\|\||;;&?|;&|\|&|[;&|()])/.exec(this.s.slice(this.i, this.i + 3));
      if (op) {
        if (op[0] === '(') depth++;
        if (op[0] === ')') depth--;
        flush();
        out += op[0];
        this.i += op[0].length;
        continue;
      }
      const redirect = /^(?:\d*)(?:<<<|<<-?|<>|>>|>&|<&|>\||[<>])/.exec(this.s.slice(this.i, this.i + 4));
      if (redirect && !(redirect[0].length === 1 && this.peek(1) === '(')) {
        this.i += redirect[0].length;
        let text = sep + redirect[0];
        sep = '';
        while (this.peek() === ' ' || this.peek() === '\t') text += this.s[this.i++];
        if (redirect[0].endsWith('<<') || redirect[0].endsWith('<<-')) {
          const d = this.word(words);
          heredocs.push({
            delimiter: d.inner,
            quoted: /['"\\]/.test(d.out),
            stripTabs: redirect[0].endsWith('-'),
            code: readsCodeFromStdin(words),
          });
          // Kept with the command's words so that it is written in order.
          words.push({ out: text + d.out, inner: '', values: [], start: -1 });
        } else {
          const target = this.word(words);
          words.push({ out: text + target.out, inner: '', values: [], start: -1 });
        }
        continue;
      }
      const w = this.word(words);
      w.out = sep + w.out;
      sep = '';
      words.push(w);
    }
    flush();
    return out + sep;
  }


  /** Reads the bodies of the here-documents announced on the line that just ended, with their delimiters. */
  private heredocBodies(pending: PendingHeredoc[]): string {
    let out = '';
    for (const h of pending) {
      const lines: string[] = [];
      let closing = '';
      while (this.i < this.s.length) {
        const nl = this.s.indexOf('\n', this.i);
        const end = nl === -1 ? this.s.length : nl;
        const line = this.s.slice(this.i, end);
        const next = nl === -1 ? this.s.length : nl + 1;
        if ((h.stripTabs ? line.replace(/^\t+/, '') : line) === h.delimiter) {
          closing = line + (nl === -1 ? '' : '\n');
          this.i = next;
          break;
        }
        if (h.quoted) lines.push(line + '\n');
        else lines.push(this.heredocLine(end) + '\n');
        this.i = next;
      }
      out += this.heredocBody(lines.join(''), h) + closing;
    }
    return out;
  }

  /** A body as written, or made safe: a shell reading it runs it as code, a quoted one is never expanded. */
  private heredocBody(body: string, h: PendingHeredoc): string {
    if (!body.includes(PLACEHOLDER_START)) return body;
    if (h.code && h.quoted) return this.innerShell(body);
    if (h.code)
      throw new UnsafeTemplateError(
        `a template value in a here-document that a shell runs as its script: quote the delimiter ` +
          `(<<'${h.delimiter}'), so that the inner shell expands the value from the environment as data`,
      );
    throw new UnsafeTemplateError(
      `a template value inside a quoted here-document (<<'${h.delimiter}') cannot be passed as data: ` +
        `use an unquoted delimiter (<<${h.delimiter}), where the value is expanded from the environment`,
    );
  }

  /** A line of an unquoted here-document up to `stop`: expansions are live there, as in double quotes. */
  private heredocLine(stop: number): string {
    let out = '';
    while (this.i < stop) {
      const p = this.placeholder();
      if (p !== null) {
        out += this.ref(p, 'double');
        continue;
      }
      const c = this.peek();
      if (c === '\\') {
        out += this.s.slice(this.i, this.i + 2);
        this.i += 2;
      } else if (c === '$' || c === '`') {
        out += this.expansion().out;
      } else {
        out += c;
        this.i++;
      }
    }
    return out;
  }

  /**
   * One word, up to a blank or an operator: plain characters, quotes, expansions and placeholders. Returns
   * what to write and the word's text as an inner shell would get it.
   */
  private word(before: Word[]): Word {
    const start = this.i;
    let out = '';
    let inner = '';
    const values: number[] = [];
    // `name[` at the start of a word: an assignment to an array element, its subscript is arithmetic.
    const sub = /^([A-Za-z_][A-Za-z0-9_]*)\[/.exec(this.s.slice(this.i, this.i + 260));
    if (sub && commandWords(before).length === 0) {
      this.i += sub[0].length;
      const stopAt = this.matching('[', ']');
      const text = this.associative.has(sub[1]!)
        ? this.doubleLike(stopAt, 'unquoted')
        : this.arithmeticUntil(stopAt);
      out += sub[0] + text + ']';
      inner += sub[0] + text + ']';
      this.i = stopAt + 1;
    }
    while (this.i < this.s.length) {
      const c = this.peek();
      if (c === '`' && this.backticks > 0) break;
      if (/[\s;&|()<>]/.test(c)) {
        if ((c === '<' || c === '>') && this.peek(1) === '(') {
          // Process substitution <(...) >(...): a command of its own.
          this.i += 2;
          const body = this.commands(')');
          this.i++;
          out += `${c}(${body})`;
          inner += `${c}(${body})`;
          continue;
        }
        break;
      }
      const p = this.placeholder();
      if (p !== null) {
        out += this.ref(p, 'unquoted');
        inner += PLACEHOLDER_START + p + PLACEHOLDER_END;
        values.push(p);
        continue;
      }
      if (c === '\\') {
        out += this.s.slice(this.i, this.i + 2);
        inner += this.s[this.i + 1] ?? '';
        this.i += 2;
      } else if (c === "'") {
        this.i++;
        const close = this.s.indexOf("'", this.i);
        const stop = close === -1 ? this.s.length : close;
        let text = '';
        let raw = '';
        while (this.i < stop) {
          const q = this.placeholder();
          if (q !== null) {
            text += this.ref(q, 'single');
            raw += PLACEHOLDER_START + q + PLACEHOLDER_END;
            values.push(q);
          } else {
            text += this.s[this.i];
            raw += this.s[this.i++];
          }
        }
        this.i = stop + 1;
        out += `'${text}'`;
        inner += raw;
      } else if (c === '$' && this.peek(1) === "'" && this.dialect === 'bash') {
        this.i += 2;
        let text = '';
        let raw = '';
        while (this.i < this.s.length && this.peek() !== "'") {
          const q = this.placeholder();
          if (q !== null) {
            text += this.ref(q, 'ansi');
            raw += PLACEHOLDER_START + q + PLACEHOLDER_END;
            values.push(q);
          } else if (this.peek() === '\\') {
            text += this.s.slice(this.i, this.i + 2);
            raw += this.s.slice(this.i, this.i + 2);
            this.i += 2;
          } else {
            text += this.s[this.i];
            raw += this.s[this.i++];
          }
        }
        this.i++;
        out += `$'${text}'`;
        inner += `$'${raw}'`;
      } else if (c === '"' || (c === '$' && this.peek(1) === '"')) {
        const prefix = c === '$' ? '$"' : '"';
        this.i += prefix.length;
        const r = this.doubleQuoted(values);
        out += prefix + r.out + '"';
        inner += r.inner;
      } else {
        const t = this.plainOrExpansion(values);
        out += t;
        inner += t;
      }
    }
    return { out, inner, values, start };
  }

  /** An expansion ($..., `...`) or one plain character at the cursor: written and passed on as it is. */
  private plainOrExpansion(values: number[]): string {
    const c = this.peek();
    if (c !== '$' && c !== '`') {
      this.i++;
      return c;
    }
    const e = this.expansion();
    values.push(...e.values);
    return e.out;
  }

  /** The inside of "...": escapes, expansions, placeholders; the cursor ends after the closing quote. */
  private doubleQuoted(values: number[]): { out: string; inner: string } {
    let out = '';
    let inner = '';
    while (this.i < this.s.length && this.peek() !== '"') {
      const p = this.placeholder();
      if (p !== null) {
        out += this.ref(p, 'double');
        inner += PLACEHOLDER_START + p + PLACEHOLDER_END;
        values.push(p);
        continue;
      }
      const c = this.peek();
      if (c === '\\') {
        const n = this.peek(1);
        out += c + n;
        inner += '$`"\\\n'.includes(n) ? (n === '\n' ? '' : n) : c + n;
        this.i += 2;
      } else {
        const t = this.plainOrExpansion(values);
        out += t;
        inner += t;
      }
    }
    this.i++;
    return { out, inner };
  }

  /** Text up to `stop` read with double-quote rules (expansions live), for subscripts of associative arrays. */
  private doubleLike(stop: number, spot: Spot): string {
    let out = '';
    while (this.i < stop) {
      const p = this.placeholder();
      if (p !== null) out += this.ref(p, spot);
      else if (this.peek() === '$' || this.peek() === '`') out += this.expansion().out;
      else out += this.s[this.i++];
    }
    return out;
  }

  /** $name, ${...}, $(...), $((...)), `...`: the cursor is on `$` or the backtick. */
  private expansion(): { out: string; values: number[] } {
    const values: number[] = [];
    if (this.peek() === '`') {
      this.i++;
      this.backticks++;
      const body = this.commands('`');
      this.backticks--;
      this.i++;
      return { out: '`' + body + '`', values };
    }
    if (this.startsWith('$((')) {
      this.i += 3;
      return { out: '$((' + this.arithmetic('))') + '))', values };
    }
    if (this.startsWith('$(')) {
      this.i += 2;
      const body = this.commands(')');
      this.i++;
      return { out: '$(' + body + ')', values };
    }
    if (this.startsWith('$[')) {
      this.i += 2;
      return { out: '$[' + this.arithmetic(']') + ']', values };
    }
    if (this.startsWith('${')) {
      this.i += 2;
      return { out: '${' + this.parameter() + '}', values };
    }
    this.i++;
    return { out: '$', values };
  }

  /** The inside of ${...}: a name, maybe a subscript, then an operator and a word or an arithmetic offset. */
  private parameter(): string {
    let out = '';
    const m = /^[!#]?(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])/.exec(this.s.slice(this.i, this.i + 260));
    let name = '';
    if (m) {
      name = m[0].replace(/^[!#]/, '');
      out += m[0];
      this.i += m[0].length;
    }
    if (this.peek() === '[') {
      const stop = this.matching('[', ']');
      this.i++;
      out += '[' + (this.associative.has(name) ? this.doubleLike(stop, 'double') : this.arithmeticUntil(stop)) + ']';
      this.i = stop + 1;
    }
    const stop = this.matching('{', '}', true);
    if (this.peek() === ':' && !'-=?+'.includes(this.peek(1))) {
      // ${x:offset:length}: arithmetic.
      this.i++;
      out += ':' + this.arithmeticUntil(stop);
    } else {
      // ${x:-word}, ${x#pattern}, ${x/a/b}...: a word, expanded as in double quotes.
      while (this.i < stop) {
        const p = this.placeholder();
        if (p !== null) out += this.ref(p, 'bare');
        else if (this.peek() === '\\') {
          out += this.s.slice(this.i, this.i + 2);
          this.i += 2;
        } else if (this.peek() === '"') {
          this.i++;
          out += '"' + this.doubleQuoted([]).out + '"';
        } else if (this.peek() === "'") {
          const close = this.s.indexOf("'", this.i + 1);
          const end = close === -1 ? stop : close;
          let text = "'";
          this.i++;
          while (this.i < end) {
            const q = this.placeholder();
            text += q !== null ? this.ref(q, 'single') : this.s[this.i++];
          }
          this.i = end + 1;
          out += text + "'";
        } else if (this.peek() === '$' || this.peek() === '`') out += this.expansion().out;
        else out += this.s[this.i++];
      }
    }
    this.i = stop + 1;
    return out;
  }

  /** Arithmetic up to `close`: every value in it must be an integer. */
  private arithmetic(close: string): string {
    let depth = 0;
    let out = '';
    while (this.i < this.s.length) {
      if (depth === 0 && this.startsWith(close)) break;
      const p = this.placeholder();
      if (p !== null) {
        this.integers.add(p);
        out += this.ref(p, 'bare');
        continue;
      }
      const c = this.peek();
      if (c === '(') depth++;
      if (c === ')') depth--;
      if (c === '$' || c === '`') out += this.expansion().out;
      else out += this.s[this.i++];
    }
    this.i += close.length;
    return out;
  }

  private arithmeticUntil(stop: number): string {
    let out = '';
    while (this.i < stop) {
      const p = this.placeholder();
      if (p !== null) {
        this.integers.add(p);
        out += this.ref(p, 'bare');
      } else if (this.peek() === '$' || this.peek() === '`') out += this.expansion().out;
      else out += this.s[this.i++];
    }
    return out;
  }

  /** Index of the bracket closing the one before the cursor (skipping nested pairs and quotes). */
  private matching(open: string, close: string, opened = false): number {
    let depth = opened ? 1 : 0;
    let j = this.i;
    for (; j < this.s.length; j++) {
      const c = this.s[j]!;
      if (c === '\\') {
        j++;
        continue;
      }
      if (c === "'" && open === '{') {
        const q = this.s.indexOf("'", j + 1);
        if (q !== -1) j = q;
        continue;
      }
      if (c === open) depth++;
      else if (c === close) {
        depth--;
        if (depth === 0) return j;
      }
    }
    return this.s.length;
  }


  /** Code run again by this shell (eval, trap), made safe the same way. */
  private inner(code: string): string {
    return new Scanner(code, this.dialect, this.o, this.integers).script();
  }

  /** Code run by a shell of its own: made safe, after lines reading the values it has no variable for. */
  private innerShell(code: string): string {
    const safe = this.inner(code);
    const reads = this.o.readInInnerShell(placeholdersIn(code));
    return reads ? `${reads}\n${safe}` : safe;
  }

  /** Writes a simple command: most words as they are; code handed to a shell again is made safe first. */
  private emitCommand(words: Word[]): string {
    if (words.length === 0) return '';
    const { cmd, code, integer } = rolesOf(words);
    for (const w of integer) for (const v of w.values) this.integers.add(v);
    if (code.size === 0 || ![...code].some((w) => w.values.length > 0)) return words.map((w) => w.out).join('');
    // The code the inner shell runs: eval joins its arguments with spaces.
    const ordered = words.filter((w) => code.has(w));
    const innerCode = ordered.map((w) => w.inner).join(' ');
    // eval and trap run the code in this shell (its variables are there); a shell -c is a process of its own.
    const safe = cmd === 'eval' || cmd === 'trap' ? this.inner(innerCode) : this.innerShell(innerCode);
    const quoted = `'${safe.replaceAll("'", `'\\''`)}'`;
    const lead = /^\s*/.exec(ordered[0]!.out)![0];
    let written = false;
    return words
      .map((w) => {
        if (!code.has(w)) return w.out;
        if (written) return '';
        written = true;
        return lead + quoted;
      })
      .join('');
  }
}
