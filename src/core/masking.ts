/**
 * Masking of secret values in whatever airtasks shows or stores of a task (log lines, outputs, errors) and
 * in its own log lines: each occurrence of a secret becomes `***`.
 *
 * A secret stands in text in more than one form, and each is masked: the value itself and trimmed; for a
 * multi-line value each of its lines alone (a secret printed over several log lines is stored line by
 * line), and the lines are masked as one `***` where only line ends separate them, so the whole value is
 * masked whatever its line ends (\n, \r\n); each form also as JSON writes it inside a string (a secret in
 * a JSON text a task printed). Occurrences that overlap, of one secret or of several, are masked as one:
 * no piece of either is left in view. Forms shorter than MIN_MASKED_LENGTH are not masked.
 */

export const MASK = '***';

/**
 * Shorter values (and lines of a multi-line secret) are not masked: masking `on` or `1` everywhere would
 * garble every log and output, and would still tell the value (`variables set --secret` warns).
 */
export const MIN_MASKED_LENGTH = 4;

/** The forms of a secret that are masked (see the module's comment); none for a value too short. */
export function secretForms(secret: string): string[] {
  const forms = new Set<string>();
  const add = (s: string) => {
    if (s.length >= MIN_MASKED_LENGTH) forms.add(s);
  };
  const trimmed = secret.trim();
  const lines = trimmed.split(/\r\n|\r|\n/).map((l) => l.trim());
  for (const l of lines) add(l);
  // Lines too short to be masked alone would show between the others: then the value is masked whole too.
  if (lines.length === 1 || lines.some((l) => l.length > 0 && l.length < MIN_MASKED_LENGTH)) {
    add(secret);
    add(trimmed);
    add(lines.join('\n'));
    add(lines.join('\r\n'));
  }
  for (const f of [...forms]) add(JSON.stringify(f).slice(1, -1));
  return [...forms];
}

/** What may separate two masked lines for them to be masked as one: line ends, raw or as JSON writes them. */
const LINE_ENDS = /^(?:\r|\n|\\r|\\n)*$/;

/** A state of the Aho-Corasick automaton over the forms. */
interface Node {
  next: Map<number, Node>;
  fail: Node | null;
  /** Length of the longest form that ends here (this state's own or a suffix's); 0 when none does. */
  longest: number;
}

const node = (): Node => ({ next: new Map(), fail: null, longest: 0 });

/**
 * Masks a set of secrets; build one per set (see maskerOf) and reuse it. An automaton (Aho-Corasick) over
 * the forms finds every one of them in one pass over a text, however many secrets there are.
 */
export class Masker {
  /** The values it masks, as given (forms too short to mask included). */
  readonly secrets: ReadonlySet<string>;
  private readonly root = node();
  private readonly empty: boolean;

  constructor(secrets: Iterable<string>) {
    this.secrets = new Set(secrets);
    const forms = new Set([...this.secrets].flatMap(secretForms));
    this.empty = forms.size === 0;
    for (const f of forms) {
      let n = this.root;
      for (let i = 0; i < f.length; i++) {
        const c = f.charCodeAt(i);
        let child = n.next.get(c);
        if (!child) n.next.set(c, (child = node()));
        n = child;
      }
      n.longest = f.length;
    }
    // Failure links breadth first: a state's fail is its longest proper suffix that is also a state.
    const queue: Node[] = [];
    for (const child of this.root.next.values()) {
      child.fail = this.root;
      queue.push(child);
    }
    for (let q = 0; q < queue.length; q++) {
      const n = queue[q]!;
      for (const [c, child] of n.next) {
        let f = n.fail;
        while (f && !f.next.has(c)) f = f.fail;
        child.fail = f ? f.next.get(c)! : this.root;
        child.longest = Math.max(child.longest, child.fail.longest);
        queue.push(child);
      }
    }
  }

  /** True when it masks nothing (no secrets, or all too short). */
  get isEmpty(): boolean {
    return this.empty;
  }

  /** Whether it masks every one of these values (then a masker of them adds nothing). */
  covers(values: Iterable<string>): boolean {
    for (const v of values) if (!this.secrets.has(v)) return false;
    return true;
  }

  /** [start, end) of the text to mask, in order; overlapping, adjacent and line-by-line ones merged. */
  private spans(text: string): Array<[number, number]> {
    const spans: Array<[number, number]> = [];
    let n = this.root;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      while (n !== this.root && !n.next.has(c)) n = n.fail!;
      n = n.next.get(c) ?? this.root;
      if (n.longest === 0) continue;
      let start = i + 1 - n.longest;
      // A later occurrence may reach back over earlier ones, or follow one on the next line: one span.
      for (let last = spans.at(-1); last; last = spans.at(-1)) {
        const joined =
          start <= last[1] || (start - last[1] <= 8 && LINE_ENDS.test(text.slice(last[1], start)));
        if (!joined) break;
        start = Math.min(start, last[0]);
        spans.pop();
      }
      spans.push([start, i + 1]);
    }
    return spans;
  }

  /** True when the text holds a form of one of the secrets. */
  test(text: string): boolean {
    return !this.empty && this.spans(text).length > 0;
  }

  /** The text with every form of every secret replaced by `***`. */
  mask(text: string): string {
    if (this.empty || text.length < MIN_MASKED_LENGTH) return text;
    const spans = this.spans(text);
    if (spans.length === 0) return text;
    let out = '';
    let at = 0;
    for (const [start, end] of spans) {
      out += text.slice(at, start) + MASK;
      at = end;
    }
    return out + text.slice(at);
  }

  /**
   * A JSON value with its strings masked, object keys included (two keys masked alike: the last one
   * stays). A number or boolean whose text holds a secret becomes the masked text. Objects are read as
   * JSON.stringify reads them (toJSON first), so the result stores as the value would have.
   */
  maskDeep(value: unknown): unknown {
    if (this.empty) return value;
    if (typeof value === 'string') return this.mask(value);
    if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
      const text = String(value);
      const masked = this.mask(text);
      return masked === text ? value : masked;
    }
    if (Array.isArray(value)) return value.map((v) => this.maskDeep(v));
    if (value && typeof value === 'object') {
      const toJSON = (value as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') return this.maskDeep((toJSON as () => unknown).call(value));
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [this.mask(k), this.maskDeep(v)] as const),
      );
    }
    return value;
  }
}

export const NO_SECRETS = new Masker([]);

const built = new WeakMap<readonly string[], Masker>();

/** The masker of a list of secrets, built once per list (the same list object gets the same masker). */
export function maskerOf(values: readonly string[]): Masker {
  let m = built.get(values);
  if (!m) built.set(values, (m = values.length === 0 ? NO_SECRETS : new Masker(values)));
  return m;
}

/*
 * The secrets this process knows: what a worker read of the secret variables, and values tasks read
 * since. Its own log lines are masked with them (createLogger), and so is whatever a task shows or
 * leaves behind. Each source (a worker's set of secret variables, say) replaces its own values when it
 * reads them again; the masker is rebuilt only when the values changed.
 */
const sources = new Map<object, ReadonlySet<string>>();
let known = NO_SECRETS;

/** Sets the secrets one source knows (replacing what it knew before). */
export function setKnownSecrets(source: object, values: Iterable<string>): void {
  const next = new Set(values);
  const before = sources.get(source);
  if (before && before.size === next.size && [...next].every((v) => before.has(v))) return;
  sources.set(source, next);
  const all = new Set<string>();
  for (const s of sources.values()) for (const v of s) all.add(v);
  known = all.size === 0 ? NO_SECRETS : new Masker(all);
}

/** A masker of every secret this process knows. */
export function knownSecrets(): Masker {
  return known;
}

/**
 * A line of JSON (a pino log line) with the secrets this process knows masked in its values and keys. A
 * line holding none is returned as it is (the usual case, one pass); one that is not JSON is masked as
 * text.
 */
export function maskJsonLine(line: string, m: Masker = known): string {
  if (!m.test(line)) return line;
  try {
    return JSON.stringify(m.maskDeep(JSON.parse(line))) + (line.endsWith('\n') ? '\n' : '');
  } catch {
    return m.mask(line);
  }
}
