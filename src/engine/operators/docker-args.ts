/** The docker operator's arguments, checked before anything else happens. */
import { PULL_POLICIES, type PullPolicy } from '../../docker/images.js';
import { nanoCpus, parseBytes } from '../../docker/units.js';
import type { DockerOptions, TaskOptions } from '../dag/options.js';
import { TaskFailure } from './types.js';

/** The operator's arguments: DockerOptions without the task options (but gpus, which it leases itself). */
export type DockerArgs = Omit<DockerOptions, Exclude<keyof TaskOptions, 'gpus'>>;

/** The task's args as DockerArgs; a TaskFailure names the first one that is wrong. */
export function checkArgs(raw: Record<string, unknown>): DockerArgs {
  const a = raw as unknown as DockerArgs;
  const bad = (m: string) => new TaskFailure(`invalid docker task: ${m}`);
  if (typeof a.image !== 'string' || a.image.trim() === '') throw bad('image must be a non-empty string');
  if (a.command !== undefined && typeof a.command !== 'string' && !isStringArray(a.command)) {
    throw bad('command must be a string or an array of strings');
  }
  if (a.pullPolicy !== undefined && !PULL_POLICIES.includes(a.pullPolicy as PullPolicy)) {
    throw bad(`pullPolicy must be one of ${PULL_POLICIES.join(', ')}`);
  }
  if (a.output !== undefined && !['last_line', 'all', 'none'].includes(a.output)) {
    throw bad('output must be last_line, all or none');
  }
  if (a.variables !== undefined) {
    const v = a.variables as unknown;
    const ok =
      isStringArray(v) ||
      (typeof v === 'object' &&
        v !== null &&
        !Array.isArray(v) &&
        Object.values(v).every((p) => typeof p === 'string'));
    if (!ok) throw bad('variables must be a list of keys or an object of key -> path in the container');
  }
  try {
    if (a.memory !== undefined) parseBytes(a.memory, 'memory');
    if (a.shmSize !== undefined) parseBytes(a.shmSize, 'shmSize');
    if (a.cpus !== undefined) nanoCpus(a.cpus);
  } catch (err) {
    throw bad((err as Error).message);
  }
  return a;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}
