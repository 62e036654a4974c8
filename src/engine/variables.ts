/** Variable values as tasks and commands see them: secret values decrypted with the configured key. */
import { decryptSecret, loadSecretKey, requireSecretKey } from './secrets.js';
import type { Queryable } from './store/db.js';
import { getVariable, listSecretVariables, type VariableRow } from './store/variables.js';

/** The plain value of a stored variable; an encrypted one needs the key (a clear error without it). */
export function plainValue(row: VariableRow): string {
  if (!row.encrypted) return row.value;
  return decryptSecret(row.value, row.key, requireSecretKey(`reading secret variable "${row.key}"`));
}

export async function readVariable(q: Queryable, key: string): Promise<string | undefined> {
  const row = await getVariable(q, key);
  return row ? plainValue(row) : undefined;
}

/**
 * Values of the secret variables, for masking task logs. Values this process cannot decrypt (no key or
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
