/**
 * The Docker engine for services: which one a call talks to, and its errors (engine, swarm, build and
 * docker CLI ones) as airtasks errors with the documented exit codes.
 */
import type Docker from 'dockerode';
import { BuildError } from '../docker/build.js';
import { DockerCliError } from '../docker/cli.js';
import { connectDocker, unreachableMessage } from '../docker/engine.js';
import { SwarmError } from '../docker/swarm.js';
import { AirtasksError, ExitCode, UnavailableError } from '../core/errors.js';

export interface DockerTarget {
  dockerHost?: string;
}

export function dockerFor(o: DockerTarget): Docker {
  return connectDocker(o.dockerHost ? { host: o.dockerHost } : {});
}

const CODES: Record<Exclude<SwarmError['kind'], 'not-manager'>, ExitCode> = {
  exists: ExitCode.USAGE,
  'not-found': ExitCode.NOT_FOUND,
  invalid: ExitCode.USAGE,
  engine: ExitCode.ERROR,
};

/** A Docker error as an airtasks error; anything else is returned as it is. */
export function dockerError(err: unknown, dockerHost?: string): unknown {
  if (err instanceof SwarmError)
    return err.kind === 'not-manager'
      ? new UnavailableError('swarm', err.message, { cause: err })
      : new AirtasksError(err.message, CODES[err.kind], { cause: err });
  if (err instanceof DockerCliError)
    return err.notInstalled
      ? new UnavailableError(err.program === 'docker' ? 'docker' : 'compose', err.message, { cause: err })
      : new AirtasksError(err.message, ExitCode.ERROR, { cause: err });
  if (err instanceof BuildError) return new AirtasksError(err.message, ExitCode.ERROR, { cause: err });
  const unreachable = unreachableMessage(err, dockerHost);
  if (unreachable) return new UnavailableError('docker', unreachable, { cause: err });
  return err;
}

/** Runs Docker calls, turning their errors into errors with the documented exit codes. */
export async function withDocker<T>(o: DockerTarget, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw dockerError(err, o.dockerHost);
  }
}
