/** Variables shared by all tasks: get, set, list, delete, import, export. */
import { readFile } from 'node:fs/promises';
import { NotFoundError, ValidationError } from '../core/errors.js';
import { encryptSecret, requireSecretKey } from '../engine/secrets.js';
import * as vars from '../engine/store/variables.js';
import { plainValue } from '../engine/variables.js';
import type { ConnectionOptions } from './config.js';
import { withEngine } from './engine.js';
import { checkStorableText } from './input-checks.js';

const KEY = /^[A-Za-z0-9_.\- ]{1,250}$/;

function checkKey(key: string) {
  if (!KEY.test(key))
    throw new ValidationError(
      'key',
      'malformed',
      `invalid variable key "${key}": use 1-250 letters, digits, spaces and _ . -`,
      { value: key },
    );
}

export interface VariableItem {
  key: string;
  value: string;
  secret: boolean;
  description: string;
}

const MASK = '***';

const noVariable = (key: string) => new NotFoundError('variable', key, `no variable "${key}"`);

export async function getVariable(o: ConnectionOptions & { key: string }): Promise<VariableItem> {
  return withEngine(o, async (e) => {
    const v = await vars.getVariable(e.db, o.key);
    if (!v) throw noVariable(o.key);
    return { key: v.key, value: plainValue(v), secret: v.is_secret, description: v.description };
  });
}

export async function setVariable(
  o: ConnectionOptions & { key: string; value: string; secret?: boolean; description?: string },
): Promise<void> {
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

/** Imports a JSON object of key -> value (non-string values are stored as JSON text); all or nothing. */
export async function importVariables(
  o: ConnectionOptions & { file: string },
): Promise<{ imported: number }> {
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
  const entries = Object.entries(parsed as Record<string, unknown>);
  for (const [k, v] of entries) {
    checkKey(k);
    checkStorableText(
      typeof v === 'string' ? v : JSON.stringify(v),
      'file',
      `the value of "${k}" in ${o.file}`,
    );
  }
  return withEngine(o, async (e) => {
    await e.db.tx(async (c) => {
      for (const [k, v] of entries)
        await vars.setVariable(c, k, typeof v === 'string' ? v : JSON.stringify(v));
    });
    return { imported: entries.length };
  });
}

/** All variables as one JSON object; secret values are left out unless asked for. */
export async function exportVariables(
  o: ConnectionOptions & { includeSecrets?: boolean },
): Promise<Record<string, string>> {
  return withEngine(o, async (e) => {
    const out: Record<string, string> = {};
    for (const v of await vars.listVariables(e.db))
      if (!v.is_secret || o.includeSecrets) out[v.key] = plainValue(v);
    return out;
  });
}
