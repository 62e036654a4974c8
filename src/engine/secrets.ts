/**
 * Encryption at rest of secret variables: AES-256-GCM with a 32-byte key from AIRTASKS_SECRET_KEY or from
 * the file named by AIRTASKS_SECRET_KEY_FILE (e.g. a Docker swarm secret under /run/secrets/).
 * Stored form: `v1.<key id>.<iv>.<tag>.<ciphertext>` (base64url parts); the key id (a hash prefix of the
 * key) lets a wrong key be told apart from a damaged value. The variable's name is authenticated too,
 * so an encrypted value cannot be moved to another variable.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AirtasksError, ExitCode } from '../core/errors.js';
import { hideFromTasks } from './operators/task-env.js';

export const SECRET_KEY_ENV = 'AIRTASKS_SECRET_KEY';
export const SECRET_KEY_FILE_ENV = 'AIRTASKS_SECRET_KEY_FILE';
const HOW_TO_MAKE_ONE = 'generate one with `openssl rand -base64 32`';

export interface SecretKey {
  bytes: Buffer;
  /** First 8 hex digits of the key's SHA-256: names the key in messages without revealing it. */
  id: string;
}

const keyError = (msg: string) => new AirtasksError(msg, ExitCode.USAGE);

/** The configured key, or null when none is configured. Throws when one is configured but unusable. */
export function loadSecretKey(env: NodeJS.ProcessEnv = process.env): SecretKey | null {
  const inline = env[SECRET_KEY_ENV];
  const file = env[SECRET_KEY_FILE_ENV];
  if (inline && file)
    throw keyError(`both ${SECRET_KEY_ENV} and ${SECRET_KEY_FILE_ENV} are set: set only one of them`);
  let text: string;
  let source: string;
  if (inline) {
    text = inline;
    source = SECRET_KEY_ENV;
  } else if (file) {
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw keyError(
        `cannot read the secret key file ${file} (${SECRET_KEY_FILE_ENV}): ${(err as Error).message}`,
      );
    }
    source = `${SECRET_KEY_FILE_ENV} (${file})`;
  } else {
    return null;
  }
  // Wherever it came from, no task of this process may find it in its environment.
  hideFromTasks(text.trim());
  const bytes = decodeKey(text.trim());
  if (!bytes)
    throw keyError(
      `the secret key in ${source} must be 32 bytes written as base64 or 64 hex digits: ${HOW_TO_MAKE_ONE}`,
    );
  return { bytes, id: createHash('sha256').update(bytes).digest('hex').slice(0, 8) };
}

function decodeKey(text: string): Buffer | null {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/_-]{42,44}={0,2}$/.test(text)) {
    const b = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (b.length === 32) return b;
  }
  return null;
}

/** The key, or an error saying how to provide it. */
export function requireSecretKey(why: string, env: NodeJS.ProcessEnv = process.env): SecretKey {
  const k = loadSecretKey(env);
  if (!k)
    throw keyError(
      `${why} needs the secret key: set ${SECRET_KEY_ENV}, or ${SECRET_KEY_FILE_ENV} to a file holding it (${HOW_TO_MAKE_ONE}; keep it, values set with it cannot be read without it)`,
    );
  return k;
}

const aad = (name: string) => Buffer.from(`airtasks-variable:${name}`, 'utf8');

export function encryptSecret(plain: string, name: string, key: SecretKey): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key.bytes, iv);
  c.setAAD(aad(name));
  const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
  return [
    'v1',
    key.id,
    iv.toString('base64url'),
    c.getAuthTag().toString('base64url'),
    ct.toString('base64url'),
  ].join('.');
}

export function decryptSecret(stored: string, name: string, key: SecretKey): string {
  const parts = stored.split('.');
  const [version, keyId, iv, tag, ct] = parts;
  if (
    parts.length !== 5 ||
    version !== 'v1' ||
    !keyId ||
    iv === undefined ||
    tag === undefined ||
    ct === undefined
  )
    throw new AirtasksError(
      `the stored value of secret variable "${name}" is not in a known format: set it again`,
    );
  if (keyId !== key.id)
    throw keyError(
      `secret variable "${name}" was encrypted with key ${keyId}, but the configured key is ${key.id}: set ${SECRET_KEY_ENV} (or ${SECRET_KEY_FILE_ENV}) to the key it was set with, or set the variable again`,
    );
  try {
    const d = createDecipheriv('aes-256-gcm', key.bytes, Buffer.from(iv, 'base64url'));
    d.setAAD(aad(name));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
  } catch {
    throw new AirtasksError(
      `cannot decrypt secret variable "${name}": its stored value is damaged or was altered; set it again`,
    );
  }
}
