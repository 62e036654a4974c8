/** Shared by the swarm services: the engine connection and SwarmError -> exit code mapping. */
import type Docker from 'dockerode';
import { connectDocker, unreachableMessage } from '../docker/engine.js';
import { SwarmError } from '../docker/swarm.js';
import { AirtasksError, ExitCode } from '../core/errors.js';

export interface DockerTarget {
  dockerHost?: string;
}

export function dockerFor(o: DockerTarget): Docker {
  return connectDocker(o.dockerHost ? { host: o.dockerHost } : {});
}

const CODES: Record<SwarmError['kind'], ExitCode> = {
  'not-manager': ExitCode.UNAVAILABLE,
  exists: ExitCode.USAGE,
  'not-found': ExitCode.NOT_FOUND,
  invalid: ExitCode.USAGE,
  engine: ExitCode.ERROR,
};

/** Runs an engine call, turning engine and swarm errors into errors with the documented exit codes. */
export async function withEngine<T>(o: DockerTarget, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof SwarmError) throw new AirtasksError(err.message, CODES[err.kind], { cause: err });
    const unreachable = unreachableMessage(err, o.dockerHost);
    if (unreachable) throw new AirtasksError(unreachable, ExitCode.UNAVAILABLE, { cause: err });
    throw err;
  }
}
