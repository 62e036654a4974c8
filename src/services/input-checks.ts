/**
 * Checks on user-given values before they reach PostgreSQL, so bad input gets a message that says what
 * to change (exit code 2) instead of a database error, and nothing is written. Large values are refused
 * before they bloat every run or worker.
 */
import { ValidationError, type FieldMessage } from '../core/errors.js';
import { unstorableJson, unstorableText } from '../core/storable.js';

export const MAX_JSON_DEPTH = 100;
export const MAX_CONF_BYTES = 1024 * 1024;
export const MAX_VARIABLE_BYTES = 1024 * 1024;

/** How a check names the value: by the field's name (the default), or in words of its own (`the value of "k"`). */
const subject = (what: FieldMessage | undefined, name: string) =>
  what === undefined ? name : typeof what === 'string' ? what : what(name);

const tooLarge = (
  field: string,
  what: FieldMessage | undefined,
  bytes: number,
  maxBytes: number,
  advice: string,
) =>
  new ValidationError(
    field,
    'too-large',
    (name) => `${subject(what, name)} is ${bytes} bytes, over the limit of ${maxBytes}: ${advice}`,
  );

/** Throws a validation error of `field` naming the first place in a JSON value that cannot be stored. */
export function checkStorableJson(
  value: unknown,
  field: string,
  what?: FieldMessage,
  maxBytes = MAX_CONF_BYTES,
) {
  const p = unstorableJson(value, MAX_JSON_DEPTH);
  if (p)
    throw new ValidationError(
      field,
      'unstorable',
      (name) => `${subject(what, name)}: the value at ${p.at} ${p.why}`,
    );
  const bytes = Buffer.byteLength(JSON.stringify(value));
  if (bytes > maxBytes)
    throw tooLarge(field, what, bytes, maxBytes, 'keep large data elsewhere and pass a reference');
}

/** Throws a validation error of `field` when a text value cannot be stored. */
export function checkStorableText(
  value: string,
  field: string,
  what?: FieldMessage,
  maxBytes = MAX_VARIABLE_BYTES,
) {
  const p = unstorableText(value);
  if (p)
    throw new ValidationError(
      field,
      'unstorable',
      (name) => `${subject(what, name)} ${p}: encode binary data, e.g. as base64`,
    );
  const bytes = Buffer.byteLength(value);
  if (bytes > maxBytes) throw tooLarge(field, what, bytes, maxBytes, 'keep large data elsewhere');
}
