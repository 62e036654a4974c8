/**
 * Variables as files in a docker task's container: all read (and checked) before anything is created, then
 * written under the host temp dir and bound read-only. Values never go into the log, the environment or
 * labels.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import type { DockerArgs } from './docker-args.js';
import { TaskFailure, type OperatorContext } from './types.js';

export const DEFAULT_VARIABLES_MOUNT_POINT = '/run/variables';

export interface VariableFile {
  key: string;
  value: string;
  /** Path in the container, for the key -> path form; undefined for the folder form. */
  target?: string;
}

/** Reads every variable the task mounts; fails naming all the missing keys at once. */
export async function readVariables(ctx: OperatorContext, a: DockerArgs): Promise<VariableFile[]> {
  if (a.variables === undefined) return [];
  const wanted: Array<{ key: string; target?: string }> = Array.isArray(a.variables)
    ? a.variables.map((key) => ({ key }))
    : Object.entries(a.variables).map(([key, target]) => ({ key, target }));
  const mountPoint = a.variablesMountPoint ?? DEFAULT_VARIABLES_MOUNT_POINT;
  if (!path.posix.isAbsolute(mountPoint)) {
    throw new TaskFailure(
      `variablesMountPoint must be an absolute path in the container, not "${mountPoint}"`,
    );
  }
  for (const w of wanted) {
    if (w.target === undefined && (w.key === '' || w.key === '.' || w.key === '..' || /[/\0]/.test(w.key))) {
      throw new TaskFailure(
        `variable key "${w.key}" cannot be a file name under ${mountPoint}: give it a path with the key -> path form`,
      );
    }
    if (w.target !== undefined && !path.posix.isAbsolute(w.target)) {
      throw new TaskFailure(
        `the path for variable "${w.key}" must be absolute in the container, not "${w.target}"`,
      );
    }
  }
  const values = await Promise.all(wanted.map((w) => ctx.variable(w.key)));
  const missing = wanted.filter((_, i) => values[i] === undefined).map((w) => w.key);
  if (missing.length > 0) {
    throw new TaskFailure(
      `variable${missing.length > 1 ? 's' : ''} ${missing.map((k) => `"${k}"`).join(', ')} ` +
        `${missing.length > 1 ? 'do' : 'does'} not exist: set ${missing.length > 1 ? 'them' : 'it'} with \`airtasks variables set\``,
    );
  }
  return wanted.map((w, i) => ({ key: w.key, value: values[i]!, target: w.target }));
}

/** Writes the variable files under hostDir and returns the read-only mounts that show them in the container. */
export async function writeVariables(
  hostDir: string,
  files: VariableFile[],
  a: DockerArgs,
): Promise<Docker.MountSettings[]> {
  const dir = path.join(hostDir, 'variables');
  await mkdir(dir, { mode: 0o755 });
  await chmod(dir, 0o755);
  if (Array.isArray(a.variables)) {
    for (const f of files) await writeFile(path.join(dir, f.key), f.value, { mode: 0o644 });
    const target = a.variablesMountPoint ?? DEFAULT_VARIABLES_MOUNT_POINT;
    return [{ Type: 'bind', Source: dir, Target: target, ReadOnly: true }];
  }
  const mounts: Docker.MountSettings[] = [];
  for (const [i, f] of files.entries()) {
    const source = path.join(dir, String(i));
    await writeFile(source, f.value, { mode: 0o644 });
    mounts.push({ Type: 'bind', Source: source, Target: f.target!, ReadOnly: true });
  }
  return mounts;
}
