/**
 * The unprivileged user a worker runs its tasks as (`worker --run-as USER`): the process host, and so
 * every task on the worker's host, runs with that user's uid and gid, no supplementary groups, and its HOME.
 * Then the worker's own environment (/proc/<worker>/environ), the secret key file and /run/secrets are the
 * worker's (root's) only; the files the worker prepares for a try are handed to that user alone.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ValidationError } from '../../core/errors.js';

export interface TaskUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** A passwd line's user: name:password:uid:gid:gecos:home:shell. */
function parsePasswd(line: string, name: string): TaskUser | null {
  const f = line.trim().split(':');
  if (f.length < 7 || f[0] !== name) return null;
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) return null;
  return { name, uid, gid, home: f[5] || '/' };
}

/** The user's entry: getent (which also asks NSS sources such as LDAP), else /etc/passwd. */
function lookUp(name: string): TaskUser | null {
  try {
    const out = execFileSync('getent', ['passwd', name], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return parsePasswd(out, name);
  } catch {
    // No getent (or no such user): the file itself.
  }
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const u = parsePasswd(line, name);
      if (u) return u;
    }
  } catch {
    // No passwd file: no user.
  }
  return null;
}

/**
 * The task user named `name` (a user name, not a number: its HOME comes with it). Throws a ValidationError
 * on the `runAs` field (exit 2) when this process cannot switch users (not root) or the user does not exist.
 * `ownUid` is this process's uid (a parameter so tests running as root see the refusal too).
 */
export function resolveTaskUser(name: string, ownUid = process.getuid?.()): TaskUser {
  if (ownUid !== undefined && ownUid !== 0) {
    throw new ValidationError(
      'runAs',
      'malformed',
      (flag) =>
        `${flag} ${name}: only a worker running as root can run its tasks as another user (this one runs as uid ${ownUid}); start it as root, or leave out ${flag}`,
      { value: name },
    );
  }
  const user = /^[A-Za-z_][A-Za-z0-9_.-]*\$?$/.test(name) ? lookUp(name) : null;
  if (!user) {
    throw new ValidationError(
      'runAs',
      'malformed',
      (flag) =>
        `${flag} ${name}: no such user on this host; create it (e.g. useradd --system ${name}) or name another`,
      { value: name },
    );
  }
  if (user.uid === 0) {
    throw new ValidationError(
      'runAs',
      'malformed',
      (flag) => `${flag} ${name}: that user is root (uid 0); name an unprivileged user`,
      { value: name },
    );
  }
  return user;
}

/** The user this process runs its tasks as; null: its own. One per process, as its process host is. */
let current: TaskUser | null = null;

export function setTaskUser(user: TaskUser | null) {
  current = user;
}

export function taskUser(): TaskUser | null {
  return current;
}
