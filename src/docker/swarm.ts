/**
 * Docker Swarm through the engine API: the manager check, secrets, node labels and the state of a
 * stack's services. Secret values are only ever sent to the engine; nothing here logs them.
 */
import type Docker from 'dockerode';
import { engineMessage, statusCode } from './engine.js';
import { SECRET_NAME } from './names.js';

export const STACK_NAMESPACE_LABEL = 'com.docker.stack.namespace';

export class SwarmError extends Error {
  constructor(
    message: string,
    readonly kind: 'not-manager' | 'exists' | 'not-found' | 'invalid' | 'engine',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SwarmError';
  }
}

/** Throws a SwarmError saying how to make one when the engine is not a swarm manager. */
export async function requireSwarmManager(docker: Docker): Promise<void> {
  const info = (await docker.info()) as { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } };
  const state = info.Swarm?.LocalNodeState ?? 'inactive';
  if (state !== 'active' || !info.Swarm?.ControlAvailable)
    throw new SwarmError(
      state === 'active'
        ? 'this Docker engine is a swarm worker, not a manager: run the command against a manager (DOCKER_HOST)'
        : 'this Docker engine is not part of a swarm: run `docker swarm init` (one machine: ' +
            '`docker swarm init --advertise-addr 127.0.0.1`, or scripts/docker/ensure-swarm.sh)',
      'not-manager',
    );
}

export interface SecretInfo {
  id: string;
  name: string;
  createdAt: string;
  labels: Record<string, string>;
}

export async function createSecret(
  docker: Docker,
  name: string,
  value: Buffer,
  labels: Record<string, string> = {},
): Promise<string> {
  if (!SECRET_NAME.test(name))
    throw new SwarmError(
      `invalid secret name "${name}": letters, digits, "_", ".", "-" (at most 64), starting with a letter or digit`,
      'invalid',
    );
  if (value.length > 500 * 1024)
    throw new SwarmError(
      `the value of ${name} is ${value.length} bytes; Docker secrets hold at most 500 KiB`,
      'invalid',
    );
  try {
    const r = (await docker.createSecret({ Name: name, Data: value.toString('base64'), Labels: labels })) as {
      id?: string;
      ID?: string;
    };
    return r.id ?? r.ID ?? '';
  } catch (err) {
    if (statusCode(err) === 409)
      throw new SwarmError(
        `secret ${name} already exists; secrets cannot change: remove it first (\`airtasks secrets rm ${name}\`, after removing the services that use it) or use another name`,
        'exists',
        { cause: err },
      );
    throw new SwarmError(`creating secret ${name} failed: ${engineMessage(err)}`, 'engine', { cause: err });
  }
}

export async function listSecrets(docker: Docker): Promise<SecretInfo[]> {
  const list = (await docker.listSecrets()) as Array<{
    ID: string;
    CreatedAt: string;
    Spec?: { Name?: string; Labels?: Record<string, string> };
  }>;
  return list
    .map((s) => ({
      id: s.ID,
      name: s.Spec?.Name ?? '',
      createdAt: s.CreatedAt,
      labels: s.Spec?.Labels ?? {},
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export async function removeSecret(docker: Docker, name: string): Promise<void> {
  try {
    await docker.getSecret(name).remove();
  } catch (err) {
    if (statusCode(err) === 404) throw new SwarmError(`no secret named ${name}`, 'not-found', { cause: err });
    throw new SwarmError(`removing secret ${name} failed: ${engineMessage(err)}`, 'engine', { cause: err });
  }
}

export interface NodeInfo {
  id: string;
  hostname: string;
  role: string;
  availability: string;
  state: string;
  labels: Record<string, string>;
}

interface RawNode {
  ID: string;
  Version: { Index: number };
  Spec: { Labels?: Record<string, string>; Role?: string; Availability?: string; Name?: string };
  Description?: { Hostname?: string };
  Status?: { State?: string };
}

export async function listNodes(docker: Docker): Promise<NodeInfo[]> {
  const nodes = (await docker.listNodes()) as RawNode[];
  return nodes.map(toNodeInfo);
}

function toNodeInfo(n: RawNode): NodeInfo {
  return {
    id: n.ID,
    hostname: n.Description?.Hostname ?? '',
    role: n.Spec.Role ?? '',
    availability: n.Spec.Availability ?? '',
    state: n.Status?.State ?? '',
    labels: n.Spec.Labels ?? {},
  };
}

/** Sets and removes labels of a node (by id, id prefix or hostname); returns its labels afterwards. */
export async function updateNodeLabels(
  docker: Docker,
  node: string,
  set: Record<string, string>,
  remove: string[] = [],
): Promise<NodeInfo> {
  const nodes = (await docker.listNodes()) as RawNode[];
  const matches = nodes.filter(
    (n) => n.ID === node || n.Description?.Hostname === node || (node.length >= 3 && n.ID.startsWith(node)),
  );
  if (matches.length !== 1)
    throw new SwarmError(
      matches.length === 0
        ? `no swarm node "${node}": \`docker node ls\` lists them (id or hostname)`
        : `"${node}" matches ${matches.length} nodes: use the node id`,
      'not-found',
    );
  const n = matches[0]!;
  const labels = { ...(n.Spec.Labels ?? {}), ...set };
  for (const k of remove) delete labels[k];
  await docker.getNode(n.ID).update({ version: n.Version.Index, ...n.Spec, Labels: labels });
  return toNodeInfo((await docker.getNode(n.ID).inspect()) as RawNode);
}

export interface StackServiceState {
  name: string;
  id: string;
  image: string;
  mode: 'replicated' | 'global';
  /** Tasks running now. */
  running: number;
  /** Replicas asked for (replicated), or tasks that should run (global). */
  desired: number;
  labels: Record<string, string>;
}

/** The services of a stack with their running and desired task counts. */
export async function stackServices(docker: Docker, stack: string): Promise<StackServiceState[]> {
  const services = (await docker.listServices({
    filters: { label: [`${STACK_NAMESPACE_LABEL}=${stack}`] },
  })) as Array<{
    ID: string;
    Spec: {
      Name: string;
      Labels?: Record<string, string>;
      Mode?: { Replicated?: { Replicas?: number }; Global?: object };
      TaskTemplate?: { ContainerSpec?: { Image?: string } };
    };
  }>;
  const tasks = (await docker.listTasks({
    filters: { label: [`${STACK_NAMESPACE_LABEL}=${stack}`] },
  })) as Array<{ ServiceID: string; DesiredState?: string; Status?: { State?: string } }>;
  return services
    .map((s) => {
      const mine = tasks.filter((t) => t.ServiceID === s.ID);
      const global = !!s.Spec.Mode?.Global;
      return {
        name: s.Spec.Name,
        id: s.ID,
        image: (s.Spec.TaskTemplate?.ContainerSpec?.Image ?? '').replace(/@sha256:.*$/, ''),
        mode: global ? ('global' as const) : ('replicated' as const),
        running: mine.filter((t) => t.Status?.State === 'running').length,
        desired: global
          ? mine.filter((t) => t.DesiredState === 'running').length
          : (s.Spec.Mode?.Replicated?.Replicas ?? 0),
        labels: s.Spec.Labels ?? {},
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

export interface ServiceScale {
  name: string;
  mode: 'replicated' | 'global';
  /** Replicas asked for (replicated); null for a global service. */
  replicas: number | null;
  /** Containers swarm told to stop (a scale-down) that still run: workers draining their tasks. */
  stopping: number;
}

interface RawService {
  ID: string;
  Version: { Index: number };
  Spec: { Name: string; Mode?: { Replicated?: { Replicas?: number }; Global?: object } } & Record<
    string,
    unknown
  >;
}

async function inspectService(docker: Docker, name: string): Promise<RawService> {
  try {
    return (await docker.getService(name).inspect()) as RawService;
  } catch (err) {
    if (statusCode(err) === 404)
      throw new SwarmError(`no swarm service named ${name}`, 'not-found', { cause: err });
    throw new SwarmError(`reading service ${name} failed: ${engineMessage(err)}`, 'engine', { cause: err });
  }
}

/** A service's mode and replica count. */
export async function serviceScale(docker: Docker, name: string): Promise<ServiceScale> {
  const s = await inspectService(docker, name);
  const global = !!s.Spec.Mode?.Global;
  const tasks = (await docker.listTasks({ filters: { service: [s.ID] } })) as Array<{
    DesiredState?: string;
    Status?: { State?: string };
  }>;
  const stopping = tasks.filter(
    (t) =>
      t.DesiredState !== 'running' &&
      ['assigned', 'accepted', 'preparing', 'ready', 'starting', 'running'].includes(t.Status?.State ?? ''),
  ).length;
  return {
    name: s.Spec.Name,
    mode: global ? 'global' : 'replicated',
    replicas: global ? null : (s.Spec.Mode?.Replicated?.Replicas ?? 0),
    stopping,
  };
}

/**
 * Sets a replicated service's replica count (as `docker service scale`): the spec is sent back whole
 * with the version it was read at, so a concurrent change of the service makes this fail instead of
 * being overwritten. Swarm stops surplus replicas with SIGTERM and waits the stop grace period.
 */
export async function scaleService(docker: Docker, name: string, replicas: number): Promise<void> {
  const s = await inspectService(docker, name);
  if (s.Spec.Mode?.Global)
    throw new SwarmError(
      `service ${name} is global: its size follows its nodes, not a replica count`,
      'invalid',
    );
  try {
    await docker
      .getService(s.ID)
      .update({ version: s.Version.Index, ...s.Spec, Mode: { Replicated: { Replicas: replicas } } });
  } catch (err) {
    throw new SwarmError(`scaling ${name} to ${replicas} failed: ${engineMessage(err)}`, 'engine', {
      cause: err,
    });
  }
}
