/**
 * Containers of a Docker Compose project, found by the labels both compose v1 and v2 put on them,
 * so status and undeploy work without asking compose (v1 needs the files for every command).
 */
import type Docker from 'dockerode';
import type { StackServiceState } from './swarm.js';

export const COMPOSE_PROJECT_LABEL = 'com.docker.compose.project';
export const COMPOSE_SERVICE_LABEL = 'com.docker.compose.service';

/** Compose lower-cases project names (v2 refuses upper case); a stack name maps to this one. */
export function composeProjectName(stack: string): string {
  return stack.toLowerCase();
}

export type ComposeServiceState = Omit<StackServiceState, 'mode'> & { mode: 'compose' };

export async function composeContainers(docker: Docker, project: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${COMPOSE_PROJECT_LABEL}=${project}`] } });
}

/** The project's services as `status` shows them: containers running / containers there. */
export async function composeServices(docker: Docker, project: string): Promise<ComposeServiceState[]> {
  const byService = new Map<string, Docker.ContainerInfo[]>();
  for (const c of await composeContainers(docker, project)) {
    const s = c.Labels[COMPOSE_SERVICE_LABEL] ?? '?';
    byService.set(s, [...(byService.get(s) ?? []), c]);
  }
  return [...byService.entries()]
    .map(([service, cs]) => ({
      name: `${project}_${service}`,
      id: cs[0]!.Id,
      image: cs[0]!.Image,
      mode: 'compose' as const,
      running: cs.filter((c) => c.State === 'running').length,
      desired: cs.length,
      labels: cs[0]!.Labels,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Stops and removes the project's containers and networks (what `compose down` does). */
export async function removeComposeProject(docker: Docker, project: string): Promise<string[]> {
  const containers = await composeContainers(docker, project);
  await Promise.all(
    containers.map(async (c) => {
      const ct = docker.getContainer(c.Id);
      if (c.State === 'running') await ct.stop({ t: 30 }).catch(() => undefined);
      await ct.remove({ force: true, v: false });
    }),
  );
  const networks = await docker.listNetworks({ filters: { label: [`${COMPOSE_PROJECT_LABEL}=${project}`] } });
  for (const n of networks) await docker.getNetwork(n.Id).remove();
  return [...new Set(containers.map((c) => `${project}_${c.Labels[COMPOSE_SERVICE_LABEL] ?? '?'}`))];
}
