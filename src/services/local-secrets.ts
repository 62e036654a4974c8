/**
 * Secrets of a local (compose) deployment: swarm secrets need a swarm, so here each secret is a
 * file under the project's .airtasks/secrets/ (folder 0700, files 0600; .airtasks/ is ignored by
 * git and left out of the image's build context), which compose mounts at /run/secrets/<name>
 * like swarm does. Only the containers' root user (the entrypoints of every stack image) reads them.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SECRET_NAME } from '../docker/names.js';
import { NotFoundError, ValidationError } from '../core/errors.js';
import { findProject, requireProject } from './config.js';
import { secretValue } from './secrets.js';

export interface LocalSecretInfo {
  name: string;
  createdAt: string;
  file: string;
}

export function localSecretsDir(root: string): string {
  return path.join(root, '.airtasks', 'secrets');
}

function projectRoot(cwd?: string): string {
  return requireProject(findProject(cwd), 'local secrets belong to a project (`airtasks init` makes one)')
    .root;
}

function checkName(name: string): void {
  if (!SECRET_NAME.test(name))
    throw new ValidationError(
      'name',
      'malformed',
      `invalid secret name "${name}": letters, digits, "_", ".", "-" (at most 64)`,
      { value: name },
    );
}

export async function createLocalSecret(o: {
  cwd?: string;
  name: string;
  value: Buffer;
}): Promise<{ name: string; file: string; bytes: number; blank: boolean }> {
  checkName(o.name);
  const dir = localSecretsDir(projectRoot(o.cwd));
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  // Whatever the project's own .gitignore says, git never picks these files up.
  await writeFile(path.join(dir, '.gitignore'), '*\n');
  const file = path.join(dir, o.name);
  const { value, blank } = secretValue(o.value);
  try {
    await writeFile(file, value, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new ValidationError(
        'name',
        'taken',
        `local secret ${o.name} already exists: remove it first (airtasks secrets rm --local ${o.name})`,
        { value: o.name },
      );
    throw err;
  }
  return { name: o.name, file, bytes: value.length, blank };
}

export async function listLocalSecrets(o: { cwd?: string }): Promise<LocalSecretInfo[]> {
  const dir = localSecretsDir(projectRoot(o.cwd));
  if (!existsSync(dir)) return [];
  const names = (await readdir(dir)).filter((n) => SECRET_NAME.test(n)).sort();
  return Promise.all(
    names.map(async (name) => {
      const file = path.join(dir, name);
      return { name, file, createdAt: (await stat(file)).mtime.toISOString() };
    }),
  );
}

export async function removeLocalSecrets(o: { cwd?: string; names: string[] }): Promise<string[]> {
  const dir = localSecretsDir(projectRoot(o.cwd));
  for (const name of o.names) {
    checkName(name);
    try {
      await unlink(path.join(dir, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new NotFoundError('secret', name, `no local secret named ${name}`);
      throw err;
    }
  }
  return o.names;
}
