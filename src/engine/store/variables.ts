/** Variables shared by all tasks. */
import type { Queryable } from './db.js';

export interface VariableRow {
  key: string;
  value: string;
  is_secret: boolean;
  /** The value is AES-256-GCM ciphertext (src/engine/secrets.ts). */
  encrypted: boolean;
  description: string;
  updated_at: Date;
}

export async function getVariable(q: Queryable, key: string): Promise<VariableRow | undefined> {
  return (await q.query<VariableRow>(`SELECT * FROM variables WHERE key = $1`, [key])).rows[0];
}

export async function setVariable(
  q: Queryable,
  key: string,
  value: string,
  opts: { secret?: boolean; description?: string; encrypted?: boolean } = {},
) {
  await q.query(
    `INSERT INTO variables (key, value, is_secret, description, encrypted) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, is_secret = EXCLUDED.is_secret,
       description = EXCLUDED.description, encrypted = EXCLUDED.encrypted, updated_at = now()`,
    [key, value, opts.secret ?? false, opts.description ?? '', opts.encrypted ?? false],
  );
}

export async function deleteVariable(q: Queryable, key: string): Promise<boolean> {
  return ((await q.query(`DELETE FROM variables WHERE key = $1`, [key])).rowCount ?? 0) > 0;
}

/** Only the secret ones: what a worker masks in task logs (read for every task, so no other values). */
export async function listSecretVariables(q: Queryable): Promise<VariableRow[]> {
  return (await q.query<VariableRow>(`SELECT * FROM variables WHERE is_secret`)).rows;
}

export async function listVariables(q: Queryable): Promise<VariableRow[]> {
  return (await q.query<VariableRow>(`SELECT * FROM variables ORDER BY key`)).rows;
}
