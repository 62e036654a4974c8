/**
 * Values too large for a process's environment (Linux caps one variable at 128 KiB, and all of them with the
 * arguments at ~2 MiB) go to a task as files instead: a command template's large values (the script reads
 * them first, see templates/shell-command.ts) and a large conf (AIRTASKS_CONF_FILE instead of AIRTASKS_CONF).
 * The folder is the try's own (0700, owned by the task user under `worker --run-as`, so no other task user
 * can read it) and is removed after it.
 */
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { VALUES_DIR_VARIABLE } from '../templates/shell-command.js';
import type { TaskUser } from './task-user.js';

/** The largest conf passed in the environment as AIRTASKS_CONF. */
export const CONF_ENV_MAX = 32 * 1024;

/** Files of values a task reads, by name, and where they will be. */
export class ValueFiles {
  readonly files: Map<string, string>;

  constructor(files: ReadonlyMap<string, string> = new Map()) {
    this.files = new Map(files);
  }

  /** Moves a large AIRTASKS_CONF out of `env` into a file (AIRTASKS_CONF_FILE says where, see place()). */
  takeLargeConf(env: Record<string, string>) {
    const conf = env.AIRTASKS_CONF;
    if (conf === undefined || Buffer.byteLength(conf) <= CONF_ENV_MAX) return;
    this.files.set('AIRTASKS_CONF', conf);
    delete env.AIRTASKS_CONF;
  }

  get empty(): boolean {
    return this.files.size === 0;
  }

  /**
   * Writes the files into `dir` and points `env` at `seenAs` (the folder as the task sees it). `shared`: any
   * user may read them (a container's user is not known; the folder above them keeps host users out). `user`:
   * the task user, who owns them (null: the worker's own user).
   */
  async place(
    dir: string,
    seenAs: string,
    env: Record<string, string>,
    shared = false,
    user: TaskUser | null = null,
  ) {
    await mkdir(dir, { recursive: true, mode: shared ? 0o755 : 0o700 });
    await chmod(dir, shared ? 0o755 : 0o700);
    if (user) await chown(dir, user.uid, user.gid);
    for (const [name, content] of this.files) {
      const file = path.join(dir, name);
      await writeFile(file, content, { mode: shared ? 0o644 : 0o600 });
      if (user) await chown(file, user.uid, user.gid);
    }
    env[VALUES_DIR_VARIABLE] = seenAs;
    if (this.files.has('AIRTASKS_CONF')) env.AIRTASKS_CONF_FILE = path.posix.join(seenAs, 'AIRTASKS_CONF');
  }
}

/** A new private folder on this host for a try's value files, the task user's alone (null: the worker's). */
export async function makeValuesDir(user: TaskUser | null = null): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-values-'));
  await chmod(dir, 0o700);
  if (user) await chown(dir, user.uid, user.gid);
  return dir;
}

export async function removeValuesDir(dir: string) {
  await rm(dir, { recursive: true, force: true }).catch(() => undefined);
}
