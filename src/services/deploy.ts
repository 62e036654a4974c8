/**
 * `airtasks deploy --swarm | undeploy | status`: the project's deploy/stack.yml on a Docker Swarm.
 * Before deploying, every external secret the stack names must exist (the missing ones are listed
 * with the command that creates them). `--dev` adds a generated override that bind-mounts ./dags
 * and ./plugins into the airtasks services, so the stack file itself never needs editing.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { runDockerCli } from '../docker/cli.js';
import { composeProjectName, composeServices, type ComposeServiceState } from '../docker/compose.js';
import {
  listNodes,
  listSecrets,
  requireSwarmManager,
  stackServices,
  updateNodeLabels,
  type NodeInfo,
  type StackServiceState,
} from '../docker/swarm.js';
import type { QueueDepth } from '../engine/broker/broker.js';
import { NotConfiguredError, NotFoundError, ValidationError } from '../core/errors.js';
import { findProject, requireProject, stackName, type ConnectionOptions, type Project } from './config.js';
import { queuedByQueue } from '../engine/store/queue-load.js';
import { listWorkers } from '../engine/store/workers.js';
import type { GpuInfo } from '../core/gpus.js';
import { withEngine } from './engine.js';
import { STACK_FILE } from './scaffold.js';
import {
  airtasksServices,
  loadStackDocument,
  QUEUE_LABEL,
  stackValue,
  type StackFile,
} from './stack-file.js';
import { dockerFor, withDocker, type DockerTarget } from './docker.js';
import { writeStackImages } from './stack-images.js';
import { findStackContainer, runInStackJson } from './stack-exec.js';

export const QUEUE_NODE_LABEL = (queue: string) => `airtasks.queue.${queue}`;

export interface StackTarget extends DockerTarget {
  cwd?: string;
  /** Stack name (default: airtasks.json's stackName, else the project folder's name). */
  stack?: string;
}

export interface DeployOptions extends StackTarget {
  dev?: boolean;
  /** More compose files merged over deploy/stack.yml, in order. */
  files?: string[];
  /** docker stack deploy --resolve-image (default: never when the image has no registry, else always). */
  resolveImage?: 'always' | 'changed' | 'never';
  onProgress?: (line: string) => void;
}

export interface DeployResult {
  stack: string;
  target: 'swarm' | 'compose';
  files: string[];
  services: string[];
  secrets: string[];
}

export function projectOf(o: StackTarget): { project: Project; stack: string; stackFile: string } {
  const project = requireProject(findProject(o.cwd), 'run this inside a project (`airtasks init` makes one)');
  const stack = stackName(project, o.stack);
  return { project, stack, stackFile: path.join(project.root, STACK_FILE) };
}

/** External secrets the merged stack needs, by their real names. */
export function requiredSecrets(stacks: StackFile[]): string[] {
  const merged = new Map<string, { external?: boolean; name?: string; file?: string }>();
  for (const s of stacks)
    for (const [k, v] of Object.entries(s.secrets ?? {})) merged.set(k, { ...merged.get(k), ...(v ?? {}) });
  return [...merged.entries()].filter(([, v]) => v.external).map(([k, v]) => v.name ?? k);
}

/** The stack file and the files merged over it, each checked to exist. */
export function stackFiles(stackFile: string, more: string[] = []): string[] {
  const files = [stackFile, ...more.map((f) => path.resolve(f))];
  for (const f of files) if (!existsSync(f)) throw new NotFoundError('file', f, `${f} does not exist`);
  return files;
}

/** Not found: the secrets a stack needs that do not exist (swarm ones, or the project's local ones). */
export function missingSecrets(missing: string[], local: boolean): NotFoundError {
  return new NotFoundError(
    'secret',
    missing.join(', '),
    `the stack needs ${local ? 'local ' : ''}secrets that do not exist: ${missing.join(', ')}. Create each with ` +
      `\`airtasks secrets create ${local ? '--local ' : ''}NAME\` (value from stdin or --file; an empty value turns a proxy feature off)`,
  );
}

export async function deployProject(o: DeployOptions): Promise<DeployResult> {
  const { project, stack, stackFile } = projectOf(o);
  await writeStackImages(project, stackFile);
  const files = stackFiles(stackFile, o.files);
  const docs = await Promise.all(files.map(async (f) => stackValue(await loadStackDocument(f))));
  const base = docs[0]!;
  if (o.dev) {
    const override = path.join(project.root, '.airtasks', 'dev.override.yml');
    await mkdir(path.dirname(override), { recursive: true });
    await writeFile(override, devOverride(project.root, airtasksServices(base)));
    files.push(override);
  }
  const docker = dockerFor(o);
  const needed = requiredSecrets(docs);
  await withDocker(o, async () => {
    await requireSwarmManager(docker);
    const have = new Set((await listSecrets(docker)).map((s) => s.name));
    const missing = needed.filter((n) => !have.has(n));
    if (missing.length > 0) throw missingSecrets(missing, false);
  });
  const image = typeof project.config.image === 'string' ? project.config.image : '';
  const resolve = o.resolveImage ?? (image.split('/')[0]?.match(/[.:]/) ? 'always' : 'never');
  const args = ['stack', 'deploy', ...files.flatMap((f) => ['-c', f]), '--resolve-image', resolve];
  if (resolve !== 'never') args.push('--with-registry-auth');
  args.push(stack);
  o.onProgress?.(`docker ${args.join(' ')}`);
  const r = await withDocker(o, () =>
    runDockerCli('docker', args, {
      cwd: path.dirname(stackFile),
      dockerHost: o.dockerHost,
      name: 'docker stack deploy',
    }),
  );
  for (const line of r.output.split('\n')) if (line.trim()) o.onProgress?.(line);
  return { stack, target: 'swarm', files, services: Object.keys(base.services), secrets: needed };
}

/** Bind mounts of the project's dags/ and plugins/ into every airtasks service (this node's files). */
export function devOverride(root: string, services: string[]): string {
  const volumes = [
    `${path.join(root, 'dags')}:/app/dags:ro`,
    `${path.join(root, 'plugins')}:/app/plugins:ro`,
  ];
  return (
    '# Written by `airtasks deploy --dev`: live DAGs and plugins from this folder (bind mounts work on\n' +
    '# the node that has these files; use it on one machine). Regenerated on every --dev deploy.\n' +
    stringify({ version: '3.8', services: Object.fromEntries(services.map((s) => [s, { volumes }])) })
  );
}

export async function undeployProject(
  o: StackTarget & { waitMs?: number; onProgress?: (line: string) => void },
): Promise<{ stack: string; removed: string[] }> {
  const { stack } = projectOf(o);
  const docker = dockerFor(o);
  const before = await withDocker(o, async () => {
    await requireSwarmManager(docker);
    return stackServices(docker, stack);
  });
  if (before.length === 0) throw new NotFoundError('stack', stack, `no stack named ${stack} is deployed`);
  await withDocker(o, () =>
    runDockerCli('docker', ['stack', 'rm', stack], { dockerHost: o.dockerHost, name: 'docker stack rm' }),
  );
  // Services go at once; their containers (and so the stack's networks) shortly after.
  const end = Date.now() + (o.waitMs ?? 60_000);
  for (;;) {
    const left = await docker.listContainers({
      all: true,
      filters: { label: [`com.docker.stack.namespace=${stack}`] },
    });
    if (left.length === 0 && (await stackServices(docker, stack)).length === 0) break;
    if (Date.now() > end) {
      o.onProgress?.(`${left.length} container(s) of ${stack} are still stopping`);
      break;
    }
    await new Promise((res) => setTimeout(res, 500));
  }
  return { stack, removed: before.map((s) => s.name) };
}

export interface QueueStatus {
  queue: string;
  concurrency: number | null;
  /** Worker services of this queue and their running/desired tasks. */
  services: string[];
  depth: QueueDepth | null;
  /** Task instances waiting in this queue (from Postgres); null when the database is not reachable. */
  queuedTasks: number | null;
  /** Live workers (heartbeat within the last minute) that consume this queue. */
  workers: number | null;
}

/** A live worker (heartbeat within the last minute) and the GPUs it lends to tasks. */
export interface WorkerStatus {
  workerId: string;
  hostname: string;
  queues: string[];
  concurrency: number;
  gpus: GpuInfo[];
}

export interface StatusResult {
  stack: string;
  /** Swarm services of the stack, and the compose services of a local deployment (mode "compose"). */
  services: Array<StackServiceState | ComposeServiceState>;
  queues: QueueStatus[];
  /** Live workers; empty when the database could not be read (see depthError). */
  workers: WorkerStatus[];
  /** Why queue depths are missing (no database/broker configured, or unreachable). */
  depthError: string | null;
  /** Why services are missing (no engine, or not a swarm manager); queues are still shown. */
  servicesError: string | null;
  /** Queues with waiting tasks that no live worker consumes: those tasks will never start. */
  warnings: string[];
}

export async function stackStatus(o: StackTarget & ConnectionOptions): Promise<StatusResult> {
  const { project, stack } = projectOf(o);
  const docker = dockerFor(o);
  let services: Array<StackServiceState | ComposeServiceState> = [];
  let servicesError: string | null = null;
  try {
    services = await withDocker(o, async () => {
      const local = await composeServices(docker, composeProjectName(stack));
      try {
        await requireSwarmManager(docker);
      } catch (err) {
        // No swarm here: a local (compose) deployment is all there can be.
        if (local.length > 0) return local;
        throw err;
      }
      return [...(await stackServices(docker, stack)), ...local];
    });
  } catch (err) {
    // Standalone and bare installs have no swarm: their queues are still worth showing.
    servicesError = (err as Error).message;
  }
  const configured = [
    ...Object.keys(project.config.queues ?? {}),
    ...services.map((s) => s.labels[QUEUE_LABEL]).filter((q): q is string => !!q),
  ];
  let readings: QueueReadings | null = null;
  let workers: WorkerStatus[] = [];
  let depthError: string | null = null;
  try {
    ({ readings, workers } = await readQueues({ ...o, cwd: o.cwd ?? project.root }, [
      ...new Set(configured),
    ]));
  } catch (err) {
    depthError = (err as Error).message;
    // No database configured here: the stack's own containers can read the queues.
    if (err instanceof NotConfiguredError) {
      const container = await findStackContainer({ ...o, cwd: o.cwd ?? project.root, stack });
      if (container) {
        const inside = await runInStackJson<StatusResult>(o, container, [
          'status',
          '--json',
          '--stack',
          stack,
        ]);
        if (inside && !inside.depthError) {
          readings = new Map(inside.queues.map((q) => [q.queue, q]));
          workers = inside.workers ?? [];
          depthError = null;
        } else depthError = `read in ${container.name}: ${inside?.depthError ?? 'no answer'}`;
      }
    }
  }
  const queueNames = [...new Set([...configured, ...(readings?.keys() ?? [])])];
  const queues = queueNames.sort().map((q) => ({
    queue: q,
    concurrency: project.config.queues?.[q]?.concurrency ?? null,
    services: services.filter((s) => s.labels[QUEUE_LABEL] === q).map((s) => s.name),
    depth: readings?.get(q)?.depth ?? null,
    queuedTasks: readings ? (readings.get(q)?.queuedTasks ?? 0) : null,
    workers: readings ? (readings.get(q)?.workers ?? 0) : null,
  }));
  const warnings = queues
    .filter((q) => (q.queuedTasks ?? 0) > 0 && q.workers === 0)
    .map(
      (q) =>
        `${q.queuedTasks} task(s) queued on "${q.queue}", and no live worker consumes it: ` +
        `start one (airtasks worker -q ${q.queue}) or label a node for it (airtasks nodes label <node> --queue ${q.queue})`,
    );
  return { stack, services, queues, workers, depthError, servicesError, warnings };
}

type QueueReadings = Map<string, Pick<QueueStatus, 'depth' | 'queuedTasks' | 'workers'>>;

/**
 * Each queue's depth, waiting tasks and live workers, for the given queues and every queue in use; and the
 * live workers themselves.
 */
async function readQueues(
  o: ConnectionOptions,
  names: string[],
): Promise<{ readings: QueueReadings; workers: WorkerStatus[] }> {
  return withEngine(
    o,
    async (engine) => {
      const queued = await queuedByQueue(engine.db);
      const live = await listWorkers(engine.db, 60_000);
      const workerQueues = live.map((w) => w.queues);
      // Queues that tasks wait in, or that workers consume, count even when no config names them.
      const all = [...new Set([...names, ...queued.keys(), ...workerQueues.flat().filter((q) => q !== '*')])];
      const depths = await engine.broker!.depths(all);
      const workers = live.map((w) => ({
        workerId: w.worker_id,
        hostname: w.hostname,
        queues: w.queues,
        concurrency: w.concurrency,
        gpus: w.gpu_info ?? [],
      }));
      const readings: QueueReadings = new Map(
        all.map((q) => [
          q,
          {
            depth: depths.find((d) => d.queue === q) ?? null,
            queuedTasks: queued.get(q) ?? 0,
            workers: workerQueues.filter((qs) => qs.includes(q) || qs.includes('*')).length,
          },
        ]),
      );
      return { readings, workers };
    },
    { broker: true },
  );
}

export async function labelNodeForQueue(
  o: DockerTarget & { node: string; queues: string[]; remove?: boolean },
): Promise<NodeInfo> {
  const docker = dockerFor(o);
  for (const q of o.queues)
    if (!/^[A-Za-z0-9_.-]{1,100}$/.test(q))
      throw new ValidationError('queues', 'malformed', `invalid queue name "${q}"`, { value: q });
  return withDocker(o, async () => {
    await requireSwarmManager(docker);
    const labels = o.queues.map(QUEUE_NODE_LABEL);
    const node =
      o.node === 'self' ? ((await docker.info()) as { Swarm: { NodeID: string } }).Swarm.NodeID : o.node;
    return o.remove
      ? updateNodeLabels(docker, node, {}, labels)
      : updateNodeLabels(docker, node, Object.fromEntries(labels.map((l) => [l, 'true'])));
  });
}

export async function swarmNodes(o: DockerTarget): Promise<NodeInfo[]> {
  const docker = dockerFor(o);
  return withDocker(o, async () => {
    await requireSwarmManager(docker);
    return listNodes(docker);
  });
}
