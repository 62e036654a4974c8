/**
 * A docker task's temp dir on the worker's host, <root>/airtasks-docker-XXXX (0700), bound into the
 * container: tmp/ (a scratch dir, AIRTASKS_TMP_DIR) and variables/ (the variable files). Removed after
 * the try.
 */
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import type { DockerArgs } from './docker-args.js';
import { writeVariables, type VariableFile } from './docker-variables.js';
import type { ValueFiles } from './value-files.js';
import { TaskFailure } from './types.js';

export const DEFAULT_CONTAINER_TMP_DIR = '/tmp/airtasks';
/** Env var naming the folder (on the worker's host) under which task temp dirs are made; default the OS temp dir. */
export const HOST_TMP_ENV = 'AIRTASKS_DOCKER_TMPDIR';

export async function makeHostDir(): Promise<string> {
  const hostRoot = process.env[HOST_TMP_ENV] || os.tmpdir();
  try {
    return await mkdtemp(path.join(hostRoot, 'airtasks-docker-'));
  } catch (err) {
    throw new TaskFailure(
      `cannot make the task's temp dir under ${hostRoot} (${HOST_TMP_ENV}): ${(err as Error).message}`,
    );
  }
}

export interface HostDirMounts {
  mounts: Docker.MountSettings[];
  /** Where the scratch dir is in the container; undefined when the task has none (tmpDir: false). */
  tmpDir: string | undefined;
  /** AIRTASKS_CONF, or where the value files are (AIRTASKS_VALUES_DIR, AIRTASKS_CONF_FILE). */
  valuesEnv: Record<string, string>;
}

/** Where a try's value files (values too large for the environment) are in its container. */
export const CONTAINER_VALUES_DIR = '/run/airtasks-values';

/**
 * Fills the host temp dir (scratch dir, variable files, value files); returns the mounts showing it in the
 * container.
 */
export async function mountHostDir(
  hostDir: string,
  variables: VariableFile[],
  a: DockerArgs,
  values: ValueFiles,
  conf: string,
): Promise<HostDirMounts> {
  const mounts: Docker.MountSettings[] = [];
  let tmpDir: string | undefined;
  if (a.tmpDir !== false) {
    tmpDir = a.tmpDir ?? DEFAULT_CONTAINER_TMP_DIR;
    const dir = path.join(hostDir, 'tmp');
    await mkdir(dir);
    await chmod(dir, 0o1777); // any container user may write there; the 0700 parent keeps host users out
    mounts.push({ Type: 'bind', Source: dir, Target: tmpDir, ReadOnly: false });
  }
  if (a.variables !== undefined) mounts.push(...(await writeVariables(hostDir, variables, a)));
  const valuesEnv: Record<string, string> = { AIRTASKS_CONF: conf };
  values.takeLargeConf(valuesEnv);
  if (!values.empty) {
    const dir = path.join(hostDir, 'values');
    await values.place(dir, CONTAINER_VALUES_DIR, valuesEnv, true);
    mounts.push({ Type: 'bind', Source: dir, Target: CONTAINER_VALUES_DIR, ReadOnly: true });
  }
  return { mounts, tmpDir, valuesEnv };
}

export async function removeHostDir(hostDir: string): Promise<void> {
  await rm(hostDir, { recursive: true, force: true }).catch(() => undefined);
}
