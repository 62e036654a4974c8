/**
 * What PostgreSQL text and jsonb cannot hold: NUL characters and unpaired UTF-16 surrogates. Values from
 * users and tasks are checked (or cleaned) with these before they are written, so a strange byte in a
 * task's output or log cannot make storing its result fail over and over.
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/** Why a string cannot be stored, or null. */
export function unstorableText(s: string): string | null {
  if (s.includes('\u0000')) return 'contains a NUL character (\\u0000), which PostgreSQL cannot store';
  if (LONE_SURROGATE.test(s)) return 'contains an unpaired UTF-16 surrogate (not valid Unicode)';
  return null;
}

/** The string with NULs and unpaired surrogates replaced by U+FFFD, for logs and error messages. */
export function storableText(s: string): string {
  return unstorableText(s) === null ? s : s.replaceAll('\u0000', '\ufffd').replace(LONE_SURROGATES, '\ufffd');
}

/** Where (a JSON path) and why a JSON value cannot be stored, or null. */
export function unstorableJson(value: unknown, maxDepth = 100): { at: string; why: string } | null {
  const walk = (v: unknown, at: string, depth: number): { at: string; why: string } | null => {
    if (depth > maxDepth) return { at, why: `is nested deeper than ${maxDepth} levels` };
    if (typeof v === 'string') {
      const why = unstorableText(v);
      return why ? { at, why } : null;
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const p = walk(v[i], `${at}[${i}]`, depth + 1);
        if (p) return p;
      }
    } else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        const why = unstorableText(k);
        if (why) return { at: `${at} (a key)`, why };
        const p = walk(x, `${at}.${k}`, depth + 1);
        if (p) return p;
      }
    }
    return null;
  };
  return walk(value, '$', 0);
}
