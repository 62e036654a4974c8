/**
 * The way in to a deployed stack from the project folder. The stack publishes neither its database nor
 * its broker, and their passwords are swarm secrets: so when no database is configured here (no
 * flag or env, no `airtasks standalone`), a command that needs one runs inside a running container
 * of the project's stack on this Docker engine (its scheduler, else a worker), with that
 * container's settings and secrets: `docker exec` through the engine API, stdin, stdout, stderr and
 * the exit code passed through. Paths given to such a command are the container's.
 */
import { Writable, type Readable } from 'node:stream';
import { COMPOSE_PROJECT_LABEL, composeProjectName } from '../docker/compose.js';
import { containerEntrypoint, execInContainer } from '../docker/exec.js';
import { STACK_NAMESPACE_LABEL } from '../docker/swarm.js';
import { findProject, stackName } from './config.js';
import { dockerFor, type DockerTarget } from './docker.js';
import { COMPONENT_LABEL } from './stack-file.js';

export interface StackContainer {
  stack: string;
  /** The container's name, for messages. */
  name: string;
  id: string;
}

const SWARM_SERVICE_LABEL = 'com.docker.swarm.service.name';
/** The components whose containers have the database and broker settings, in order of preference. */
const COMPONENTS = ['scheduler', 'worker'];
/** Looking for the stack must not hold up a command whose engine does not answer. */
const LOOKUP_TIMEOUT_MS = 3000;

/**
 * A running container of the project's deployed stack (swarm or compose) on this engine; null when
 * there is no project, no such container, or no engine answering.
 */
export async function findStackContainer(
  o: DockerTarget & { cwd?: string; stack?: string },
): Promise<StackContainer | null> {
  const project = findProject(o.cwd);
  if (!project.configFile) return null;
  let stack: string;
  try {
    stack = stackName(project, o.stack);
  } catch {
    return null;
  }
  const docker = dockerFor(o);
  const lookup = async (): Promise<StackContainer | null> => {
    const running = await docker.listContainers({ filters: { status: ['running'] } });
    // Swarm: the services of the stack by their component label (a manager knows them), else by name.
    const services = await docker
      .listServices({ filters: { label: [`${STACK_NAMESPACE_LABEL}=${stack}`] } })
      .then((list) =>
        COMPONENTS.flatMap((c) =>
          list.filter((s) => s.Spec?.Labels?.[COMPONENT_LABEL] === c).map((s) => s.Spec?.Name ?? ''),
        ),
      )
      .catch(() => COMPONENTS.map((c) => `${stack}_${c}`));
    const compose = composeProjectName(stack);
    const rank = (c: (typeof running)[number]): number => {
      const l = c.Labels ?? {};
      if (l[STACK_NAMESPACE_LABEL] === stack) {
        const i = services.indexOf(l[SWARM_SERVICE_LABEL] ?? '');
        return i < 0 ? -1 : i;
      }
      if (l[COMPOSE_PROJECT_LABEL] === compose) return COMPONENTS.indexOf(l[COMPONENT_LABEL] ?? '');
      return -1;
    };
    const best = running
      .filter((c) => rank(c) >= 0)
      .sort((a, b) => rank(a) - rank(b) || b.Created - a.Created)[0];
    return best ? { stack, id: best.Id, name: (best.Names[0] ?? best.Id).replace(/^\//, '') } : null;
  };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>(
    (resolve) => (timer = setTimeout(() => resolve(null), LOOKUP_TIMEOUT_MS)),
  );
  try {
    return await Promise.race([lookup().catch(() => null), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `airtasks <argv>` in the container; resolves to its exit code. */
export async function runInStack(
  o: DockerTarget,
  container: StackContainer,
  argv: string[],
  io: { stdout: Writable; stderr: Writable; stdin?: Readable },
): Promise<number> {
  const docker = dockerFor(o);
  const entrypoint = await containerEntrypoint(docker, container.id);
  return execInContainer(
    docker,
    container.id,
    [...(entrypoint.length ? entrypoint : ['airtasks']), ...argv],
    io,
  );
}

/** Runs `airtasks <argv>` (a --json command) in the container; its JSON result, or null when it gave none. */
export async function runInStackJson<T>(
  o: DockerTarget,
  container: StackContainer,
  argv: string[],
): Promise<T | null> {
  const out: Buffer[] = [];
  const sink = (into: Buffer[] | null) =>
    new Writable({
      write(chunk: Buffer, _enc, done) {
        into?.push(chunk);
        done();
      },
    });
  await runInStack(o, container, argv, { stdout: sink(out), stderr: sink(null) }).catch(() => undefined);
  try {
    return JSON.parse(Buffer.concat(out).toString('utf8')) as T;
  } catch {
    return null;
  }
}
