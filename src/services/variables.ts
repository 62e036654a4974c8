/** Variables shared by all tasks: get, set, list, delete, import, export. */
import { readFile } from 'node:fs/promises';
import { NotFoundError, ValidationError } from '../core/errors.js';
import { secretForms } from '../core/masking.js';
import { variableKeyProblem } from '../core/variable-keys.js';
import { decryptSecret, encryptSecret, requireSecretKey } from '../engine/secrets.js';
import * as vars from '../engine/store/variables.js';
import { plainValue } from '../engine/variables.js';
import type { ConnectionOptions } from './config.js';
import { withEngine } from './engine.js';
import { checkStorableText } from './input-checks.js';

function checkKey(key: string) {
  const problem = variableKeyProblem(key);
  if (problem) throw new ValidationError('key', 'malformed', problem, { value: key });
}

export interface VariableItem {
  key: string;
  value: string;
  secret: boolean;
  description: string;
}

const MASK = '***';

const noVariable = (key: string) => new NotFoundError('variable', key, `no variable "${key}"`);

/**
 * A variable. A secret one's value is given only when asked for with `reveal` (and then needs the key):
 * a script reading it by mistake fails instead of printing it, or carrying on with `***`.
 */
export async function getVariable(
  o: ConnectionOptions & { key: string; reveal?: boolean },
): Promise<VariableItem> {
  return withEngine(o, async (e) => {
    const v = await vars.getVariable(e.db, o.key);
    if (!v) throw noVariable(o.key);
    if (v.is_secret && !o.reveal)
      throw new ValidationError(
        'reveal',
        'missing',
        (flag) => `variable "${o.key}" is secret: add ${flag} to print its value`,
      );
    return { key: v.key, value: plainValue(v), secret: v.is_secret, description: v.description };
  });
}

/** A secret value too short to be masked (core/masking.ts): the caller warns that logs may show it. */
const unmaskable = (value: string) => secretForms(value).length === 0;

export async function setVariable(
  o: ConnectionOptions & { key: string; value: string; secret?: boolean; description?: string },
): Promise<{ unmaskable: boolean }> {
  checkKey(o.key);
  checkStorableText(o.value, 'value', `the value of "${o.key}"`);
  // Secret values are encrypted before they leave this process; without a key nothing is written.
  const key = o.secret ? requireSecretKey(`setting secret variable "${o.key}"`) : null;
  const value = key ? encryptSecret(o.value, o.key, key) : o.value;
  return withEngine(o, async (e) => {
    await vars.setVariable(e.db, o.key, value, {
      secret: o.secret,
      description: o.description,
      encrypted: key !== null,
    });
    return { unmaskable: Boolean(o.secret) && unmaskable(o.value) };
  });
}

/** Lists variables; values of secret ones are masked. */
export async function listVariables(o: ConnectionOptions): Promise<VariableItem[]> {
  return withEngine(o, async (e) => {
    return (await vars.listVariables(e.db)).map((v) => ({
      key: v.key,
      value: v.is_secret ? MASK : v.value,
      secret: v.is_secret,
      description: v.description,
    }));
  });
}

export async function deleteVariable(o: ConnectionOptions & { key: string }): Promise<void> {
  return withEngine(o, async (e) => {
    if (!(await vars.deleteVariable(e.db, o.key))) throw noVariable(o.key);
  });
}

/**
 * A secret variable in an export file: encrypted with the secret key as it is stored (bound to its key:
 * it decrypts only under the same name, with the same secret key), or its value in clear.
 */
export type ExportedSecret = { secret: true; encrypted: string } | { secret: true; value: string };

/** An export: key -> value for plain variables, key -> ExportedSecret for secret ones. */
export type ExportedVariables = Record<string, string | ExportedSecret>;

/**
 * All variables as one JSON object (see ExportedVariables). Secret ones only with `includeSecrets`:
 * encrypted, or with `reveal` in clear (to move them to a stack with another secret key).
 */
export async function exportVariables(
  o: ConnectionOptions & { includeSecrets?: boolean; reveal?: boolean },
): Promise<ExportedVariables> {
  return withEngine(o, async (e) => {
    const out: ExportedVariables = {};
    for (const v of await vars.listVariables(e.db)) {
      if (!v.is_secret) out[v.key] = plainValue(v);
      else if (o.includeSecrets && o.reveal) out[v.key] = { secret: true, value: plainValue(v) };
      else if (o.includeSecrets) out[v.key] = { secret: true, encrypted: sealed(v) };
    }
    return out;
  });
}

/** A secret's stored ciphertext; one stored before encryption existed is encrypted now. */
function sealed(v: vars.VariableRow): string {
  if (v.encrypted) return v.value;
  return encryptSecret(v.value, v.key, requireSecretKey(`exporting secret variable "${v.key}"`));
}

/** A variable as an import file gives it, checked, with the value to store. */
interface Imported {
  key: string;
  value: string;
  secret: boolean;
  /** A secret too short to be masked. */
  unmaskable: boolean;
}

/**
 * Imports a JSON object of key -> value, as `exportVariables` writes it: a string value is a plain
 * variable (any other JSON is stored as its text, as before secrets were exported), `{"secret": true,
 * "encrypted" | "value": ...}` a secret one, encrypted with the configured key (an encrypted value must
 * decrypt with it). All or nothing: every entry is checked before anything is written.
 */
export async function importVariables(
  o: ConnectionOptions & { file: string },
): Promise<{ imported: number; secrets: number; unmaskable: string[] }> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(o.file, 'utf8'));
  } catch (err) {
    const why = (err as Error).message;
    throw new ValidationError(
      'file',
      err instanceof SyntaxError ? 'malformed' : 'unreadable',
      `cannot import ${o.file}: ${why}`,
      { value: o.file, cause: err },
    );
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ValidationError('file', 'wrong-type', `${o.file} must hold a JSON object of key -> value`, {
      value: o.file,
    });
  }
  const entries = Object.entries(parsed as Record<string, unknown>).map(([k, v]) => imported(k, v, o.file));
  return withEngine(o, async (e) => {
    await e.db.tx(async (c) => {
      for (const v of entries)
        await vars.setVariable(c, v.key, v.value, { secret: v.secret, encrypted: v.secret });
    });
    return {
      imported: entries.length,
      secrets: entries.filter((v) => v.secret).length,
      unmaskable: entries.filter((v) => v.unmaskable).map((v) => v.key),
    };
  });
}

/** One entry of an import file, checked; a secret one encrypted (or its ciphertext checked) with the key. */
function imported(key: string, v: unknown, file: string): Imported {
  checkKey(key);
  const isSecret = Boolean(v) && typeof v === 'object' && (v as { secret?: unknown }).secret === true;
  if (!isSecret) {
    const value = typeof v === 'string' ? v : JSON.stringify(v);
    checkStorableText(value, 'file', `the value of "${key}" in ${file}`);
    return { key, value, secret: false, unmaskable: false };
  }
  const { secret: _, ...rest } = v as Record<string, unknown>;
  const fields = Object.keys(rest);
  const text = fields.length === 1 ? rest[fields[0]!] : undefined;
  if (!['value', 'encrypted'].includes(fields[0]!) || typeof text !== 'string')
    throw new ValidationError(
      'file',
      'malformed',
      `the secret variable "${key}" in ${file} needs one of "value" (in clear) or "encrypted" (as ` +
        '`variables export --include-secrets` writes it), a string, beside "secret": true',
      { value: file },
    );
  checkStorableText(text, 'file', `the value of "${key}" in ${file}`);
  const secretKey = requireSecretKey(`importing secret variable "${key}"`);
  if (fields[0] === 'value')
    return { key, value: encryptSecret(text, key, secretKey), secret: true, unmaskable: unmaskable(text) };
  let clear: string;
  try {
    clear = decryptSecret(text, key, secretKey);
  } catch (err) {
    throw new ValidationError(
      'file',
      'malformed',
      `the entry of "${key}" in ${file}: ${(err as Error).message}`,
      { value: file, cause: err },
    );
  }
  return { key, value: text, secret: true, unmaskable: unmaskable(clear) };
}
