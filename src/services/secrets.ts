/** `airtasks secrets`: swarm secrets of a deployment. A value goes to the engine and nowhere else. */
import {
  createSecret,
  listSecrets,
  removeSecret,
  requireSwarmManager,
  type SecretInfo,
} from '../docker/swarm.js';
import { dockerFor, withDocker, type DockerTarget } from './docker.js';

export const SECRET_LABEL = 'io.airtasks.secret';

/**
 * What a secret stores, swarm or local. Docker refuses empty secrets, so an empty value is stored as
 * one newline: a blank secret, which the proxy and the `*_FILE` readers take as empty ("off" for a
 * proxy feature; the original's `echo '' | docker secret create`).
 */
export function secretValue(given: Buffer): { value: Buffer; blank: boolean } {
  return {
    value: given.length === 0 ? Buffer.from('\n') : given,
    blank: given.toString('utf8').trim() === '',
  };
}

export async function createProjectSecret(
  o: DockerTarget & { name: string; value: Buffer },
): Promise<{ name: string; id: string; bytes: number; blank: boolean }> {
  const docker = dockerFor(o);
  const { value, blank } = secretValue(o.value);
  return withDocker(o, async () => {
    await requireSwarmManager(docker);
    const id = await createSecret(docker, o.name, value, { [SECRET_LABEL]: 'true' });
    return { name: o.name, id, bytes: value.length, blank };
  });
}

export async function listProjectSecrets(o: DockerTarget): Promise<SecretInfo[]> {
  const docker = dockerFor(o);
  return withDocker(o, async () => {
    await requireSwarmManager(docker);
    return listSecrets(docker);
  });
}

export async function removeProjectSecrets(o: DockerTarget & { names: string[] }): Promise<string[]> {
  const docker = dockerFor(o);
  return withDocker(o, async () => {
    await requireSwarmManager(docker);
    for (const name of o.names) await removeSecret(docker, name);
    return o.names;
  });
}
