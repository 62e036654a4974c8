/**
 * Checks on user-given values before they reach PostgreSQL, so bad input gets a message that says what
 * to change (exit code 2) instead of a database error, and nothing is written. Large values are refused
 * before they bloat every run or worker.
 */
import { usageError } from '../core/errors.js';
import { unstorableJson, unstorableText } from '../core/storable.js';

export const MAX_JSON_DEPTH = 100;
export const MAX_CONF_BYTES = 1024 * 1024;
export const MAX_VARIABLE_BYTES = 1024 * 1024;

/** Throws a usage error naming the first place in a JSON value that cannot be stored. */
export function checkStorableJson(value: unknown, what: string, maxBytes = MAX_CONF_BYTES) {
  const p = unstorableJson(value, MAX_JSON_DEPTH);
  if (p) throw usageError(`${what}: the value at ${p.at} ${p.why}`);
  const bytes = Buffer.byteLength(JSON.stringify(value));
  if (bytes > maxBytes)
    throw usageError(
      `${what} is ${bytes} bytes, over the limit of ${maxBytes}: keep large data elsewhere and pass a reference`,
    );
}

/** Throws a usage error when a text value cannot be stored. */
export function checkStorableText(value: string, what: string, maxBytes = MAX_VARIABLE_BYTES) {
  const p = unstorableText(value);
  if (p) throw usageError(`${what} ${p}: encode binary data, e.g. as base64`);
  const bytes = Buffer.byteLength(value);
  if (bytes > maxBytes)
    throw usageError(`${what} is ${bytes} bytes, over the limit of ${maxBytes}: keep large data elsewhere`);
}
