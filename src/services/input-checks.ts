/**
 * Checks on user-given values before they reach PostgreSQL, so bad input gets a message that says what
 * to change (exit code 2) instead of a database error, and nothing is written.
 * PostgreSQL text and jsonb cannot hold NUL characters or unpaired UTF-16 surrogates, and its JSON
 * parser has a nesting limit; large values are refused before they bloat every run or worker.
 */
import { usageError } from '../engine/errors.js';

export const MAX_JSON_DEPTH = 100;
export const MAX_CONF_BYTES = 1024 * 1024;
export const MAX_VARIABLE_BYTES = 1024 * 1024;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why a string cannot be stored, or null. */
function textProblem(s: string): string | null {
  if (s.includes('\u0000')) return 'contains a NUL character (\\u0000), which PostgreSQL cannot store';
  if (LONE_SURROGATE.test(s)) return 'contains an unpaired UTF-16 surrogate (not valid Unicode)';
  return null;
}

const preview = (s: string) => JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);

/** Throws a usage error naming the first place in a JSON value that cannot be stored. */
export function checkStorableJson(value: unknown, what: string, maxBytes = MAX_CONF_BYTES) {
  const walk = (v: unknown, at: string, depth: number) => {
    if (depth > MAX_JSON_DEPTH)
      throw usageError(`${what} is nested deeper than ${MAX_JSON_DEPTH} levels (at ${at}): flatten it`);
    if (typeof v === 'string') {
      const p = textProblem(v);
      if (p) throw usageError(`${what}: the string at ${at} ${p}`);
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${at}[${i}]`, depth + 1));
    } else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        const p = textProblem(k);
        if (p) throw usageError(`${what}: the key ${preview(k)} at ${at} ${p}`);
        walk(x, `${at}.${k}`, depth + 1);
      }
    }
  };
  walk(value, '$', 0);
  const bytes = Buffer.byteLength(JSON.stringify(value));
  if (bytes > maxBytes)
    throw usageError(
      `${what} is ${bytes} bytes, over the limit of ${maxBytes}: keep large data elsewhere and pass a reference`,
    );
}

/** Throws a usage error when a text value cannot be stored. */
export function checkStorableText(value: string, what: string, maxBytes = MAX_VARIABLE_BYTES) {
  const p = textProblem(value);
  if (p) throw usageError(`${what} ${p}: encode binary data, e.g. as base64`);
  const bytes = Buffer.byteLength(value);
  if (bytes > maxBytes)
    throw usageError(`${what} is ${bytes} bytes, over the limit of ${maxBytes}: keep large data elsewhere`);
}
