/** Variable values as tasks and commands see them: secret values decrypted with the configured key. */
import { maskerOf, MIN_MASKED_LENGTH, setKnownSecrets, type Masker } from '../core/masking.js';
import { decryptSecret, loadSecretKey, requireSecretKey } from './secrets.js';
import type { Queryable } from './store/db.js';
import { getVariable, listSecretVariables, type VariableRow } from './store/variables.js';

/** The plain value of a stored variable; an encrypted one needs the key (a clear error without it). */
export function plainValue(row: VariableRow): string {
  if (!row.encrypted) return row.value;
  return decryptSecret(row.value, row.key, requireSecretKey(`reading secret variable "${row.key}"`));
}

/** Secret values read lately (the newest last), masked even if they were set after the secrets were read. */
const readSecrets = new Set<string>();
const READ_SECRETS_KEPT = 1000;

/**
 * A variable's value, as a task reads it: a secret in clear (the task needs it), and from then on masked in
 * whatever this process shows or stores, even when it was set after the worker last read the secrets.
 */
export async function readVariable(q: Queryable, key: string): Promise<string | undefined> {
  const row = await getVariable(q, key);
  if (!row) return undefined;
  const value = plainValue(row);
  if (row.is_secret && value.length >= MIN_MASKED_LENGTH && !readSecrets.has(value)) {
    readSecrets.add(value);
    // Kept bounded: a worker that lives for months beside a secret rotated hourly.
    if (readSecrets.size > READ_SECRETS_KEPT) readSecrets.delete(readSecrets.values().next().value!);
    setKnownSecrets(readSecrets, readSecrets);
  }
  return value;
}

/**
 * Values of the secret variables, for masking what tasks show or leave behind. Values this process cannot decrypt (no key or
 * another key) are left out: a task here cannot read them either.
 */
export async function secretValuesForMasking(q: Queryable): Promise<string[]> {
  let key: ReturnType<typeof loadSecretKey> = null;
  try {
    key = loadSecretKey();
  } catch {
    key = null;
  }
  const out: string[] = [];
  for (const v of await listSecretVariables(q)) {
    if (!v.encrypted) out.push(v.value);
    else if (key) {
      try {
        out.push(decryptSecret(v.value, v.key, key));
      } catch {
        // Not readable here; nothing to mask.
      }
    }
  }
  return out;
}

/**
 * A masker of the secret variables, for showing what was stored before masking (older workers) or before a
 * value became secret; masks nothing this process cannot decrypt.
 */
export async function secretVariablesMasker(q: Queryable): Promise<Masker> {
  return maskerOf(await secretValuesForMasking(q));
}
