/** `airtasks secrets`: swarm secrets of a deployment. A value goes to the engine and nowhere else. */
import {
  createSecret,
  listSecrets,
  removeSecret,
  requireSwarmManager,
  type SecretInfo,
} from '../docker/swarm.js';
import { dockerFor, withEngine, type DockerTarget } from './swarm.js';

export const SECRET_LABEL = 'io.airtasks.secret';

export async function createProjectSecret(
  o: DockerTarget & { name: string; value: Buffer },
): Promise<{ name: string; id: string; bytes: number }> {
  const docker = dockerFor(o);
  return withEngine(o, async () => {
    await requireSwarmManager(docker);
    const id = await createSecret(docker, o.name, o.value, { [SECRET_LABEL]: 'true' });
    return { name: o.name, id, bytes: o.value.length };
  });
}

export async function listProjectSecrets(o: DockerTarget): Promise<SecretInfo[]> {
  const docker = dockerFor(o);
  return withEngine(o, async () => {
    await requireSwarmManager(docker);
    return listSecrets(docker);
  });
}

export async function removeProjectSecrets(o: DockerTarget & { names: string[] }): Promise<string[]> {
  const docker = dockerFor(o);
  return withEngine(o, async () => {
    await requireSwarmManager(docker);
    for (const name of o.names) await removeSecret(docker, name);
    return o.names;
  });
}
