/**
 * Swarm (or local compose) secrets imported into variables: the scheduler of a deployed stack reads
 * /run/secrets/<name> for each name in AIRTASKS_SECRET_VARIABLES when it starts and stores it as a
 * secret variable (encrypted with the stack's airtasks_secret_key), so tasks read it with
 * `ctx.variable(name)` or `{{ var.name }}` like any other. Values are never logged.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SECRET_NAME } from '../docker/names.js';
import { commaList } from '../core/comma-list.js';
import { UnavailableError, usageError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { encryptSecret, requireSecretKey } from '../engine/secrets.js';
import type { Queryable } from '../engine/store/db.js';
import { setVariable } from '../engine/store/variables.js';
import { checkStorableText } from './input-checks.js';

export const SECRET_VARIABLES_ENV = 'AIRTASKS_SECRET_VARIABLES';
export const SECRETS_DIR_ENV = 'AIRTASKS_SECRETS_DIR';

/** The secret names to import, from AIRTASKS_SECRET_VARIABLES (comma-separated); [] when unset. */
export function secretVariableNames(env: NodeJS.ProcessEnv = process.env): string[] {
  const names = [...new Set(commaList(env[SECRET_VARIABLES_ENV] ?? ''))];
  for (const n of names)
    if (!SECRET_NAME.test(n))
      throw usageError(
        `${SECRET_VARIABLES_ENV}: invalid secret name "${n}" (a letter or digit, then letters, digits, _ . -)`,
      );
  return names;
}

/** Reads each secret file and stores it as a secret variable of the same name; returns how many. */
export async function importSecretVariables(
  db: Queryable,
  names: string[],
  o: { dir?: string; logger?: Logger } = {},
): Promise<number> {
  if (names.length === 0) return 0;
  const key = requireSecretKey(`importing the secrets ${names.join(', ')} as variables`);
  const dir = o.dir ?? '/run/secrets';
  const values: Array<[string, string]> = [];
  // Every file is read and checked before anything is written: all or nothing.
  for (const name of names) {
    let text: string;
    try {
      text = (await readFile(path.join(dir, name), 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      throw new UnavailableError(
        'secret',
        `secret "${name}" (${SECRET_VARIABLES_ENV}) cannot be read from ${dir} (${(err as NodeJS.ErrnoException).code ?? 'error'}): ` +
          'give the service that secret, or remove the name from the list',
        { cause: err },
      );
    }
    checkStorableText(text, name, `secret "${name}"`);
    values.push([name, text]);
  }
  for (const [name, text] of values)
    await setVariable(db, name, encryptSecret(text, name, key), {
      secret: true,
      encrypted: true,
      description: `from the secret ${name}`,
    });
  o.logger?.info({ variables: names }, 'secrets imported as variables');
  return values.length;
}
