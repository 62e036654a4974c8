/**
 * Runs a task in a container on the worker's Docker engine.
 *
 * Order of work, so that a task fails as early and as cheaply as it can:
 *   1. arguments and variables (a missing variable fails here, before the engine is contacted);
 *   2. GPUs from the worker's allocator (a request the worker can never satisfy fails here);
 *   3. the image, under the pull policy (progress goes to the task log);
 *   4. a host temp dir holding the variable files and a scratch dir, bound into the container;
 *   5. create (labels airtasks.*), start, stream logs line by line, wait for the exit code;
 *   6. always: remove the container (unless kept) after its logs and exit code were read, remove the
 *      host temp dir, give the GPUs back.
 * A timeout or cancel (ctx.signal) stops the container and the same cleanup runs.
 * Variable values are written to files only: they never go into the log, the environment or labels.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { parseAuthValue, resolveRegistryAuth, type RegistryAuth } from '../../docker/auth.js';
import {
  attachOutput,
  findEarlierTry,
  followLogs,
  removeContainer,
  stopContainer,
  taskLabels,
} from '../../docker/containers.js';
import { connectDocker, engineMessage, unreachableMessage } from '../../docker/engine.js';
import { ensureImage, normalizeImage, PULL_POLICIES, type PullPolicy } from '../../docker/images.js';
import { nanoCpus, parseBytes } from '../../docker/units.js';
import type { DockerOptions, TaskOptions } from '../dag/options.js';
import { sleep } from '../../core/backoff.js';
import { render, templateContext } from '../template.js';
import type { GpuLease, GpuRequest } from '../worker/gpus.js';
import { TaskFailure, type Operator, type OperatorContext, type OperatorResult } from './types.js';

/** The operator's arguments: DockerOptions without the task options. */
export type DockerArgs = Omit<DockerOptions, keyof TaskOptions>;

export const DEFAULT_VARIABLES_MOUNT_POINT = '/run/variables';
export const DEFAULT_CONTAINER_TMP_DIR = '/tmp/airtasks';
/** Env var naming the folder (on the worker's host) under which task temp dirs are made; default the OS temp dir. */
export const HOST_TMP_ENV = 'AIRTASKS_DOCKER_TMPDIR';
const LOGS_DRAIN_MS = 10_000;

interface VariableFile {
  key: string;
  value: string;
  /** Path in the container, for the key -> path form; undefined for the folder form. */
  target?: string;
}

export const dockerOperator: Operator = {
  name: 'docker',
  async execute(ctx: OperatorContext): Promise<OperatorResult> {
    const a = checkArgs(ctx.task.args);
    const tpl = templateContext(ctx.run);
    const image = normalizeImage(a.image);
    const signal = ctx.signal;
    const stopped = () => new TaskFailure(`stopped: ${String(signal.reason ?? 'aborted')}`);

    // 1. Variables (and the registry auth variable): all read before anything is created.
    const variables = await readVariables(ctx, a);
    let auth: RegistryAuth | undefined;
    if (a.registryAuthVariable) {
      const value = await ctx.variable(a.registryAuthVariable);
      if (value === undefined) {
        throw new TaskFailure(`variable "${a.registryAuthVariable}" (registryAuthVariable) does not exist`);
      }
      try {
        auth = parseAuthValue(value, image);
      } catch (err) {
        throw new TaskFailure(`variable "${a.registryAuthVariable}": ${(err as Error).message}`);
      }
    }
    if (signal.aborted) throw stopped();

    // A container of an earlier try may outlive its lost worker: take its result rather than run the task twice.
    const docker = connectDocker({ host: a.dockerHost });
    const earlier = await findEarlierTry(docker, ctx.run).catch(() => undefined);
    if (earlier) return adoptEarlierTry(docker, earlier, a, ctx);

    const runtime = a.runtime ?? (a.hostConfig?.Runtime as string | undefined);
    let gpuRequest: GpuRequest | undefined = a.gpus;
    if (gpuRequest === undefined && runtime === 'nvidia' && ctx.gpus) {
      // The nvidia runtime shows a CUDA image every GPU unless told otherwise: hold them all.
      ctx.log.system(
        "runtime nvidia without gpus: the task holds all of this worker's GPUs (set gpus to ask for fewer)",
      );
      gpuRequest = 'all';
    }

    let lease: GpuLease | undefined;
    let hostDir: string | undefined;
    let container: Docker.Container | undefined;
    const keep = a.keepContainer ?? false;
    const onAbort = () => {
      if (container) void stopContainer(container, a.stopTimeout ?? 1).catch(() => undefined);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      // 2. GPUs: specific devices from the worker, or the engine's choice when the worker does not manage them.
      if (gpuRequest !== undefined && ctx.gpus) {
        const gpus = ctx.gpus;
        try {
          const pending = gpus.acquire(gpuRequest, { signal });
          // An acquire that can be served now has settled already; one that has not is waiting for busy devices.
          const now = await Promise.race([pending, Promise.resolve(undefined)]);
          if (!now) {
            ctx.log.system(
              `waiting for GPUs (${describeRequest(gpuRequest)}): ${gpus.free.length} of ${gpus.devices.length} free now`,
            );
          }
          lease = now ?? (await pending);
        } catch (err) {
          if (signal.aborted) throw stopped();
          throw new TaskFailure((err as Error).message);
        }
        if (lease.ids.length > 0) ctx.log.system(`GPUs assigned: ${lease.ids.join(', ')}`);
      }

      // 3. Image.
      const policy = a.pullPolicy ?? 'missing';
      try {
        const { pulled } = await ensureImage(docker, image, {
          policy,
          // The Docker config (and its credential helpers) is read only when a pull happens.
          auth:
            auth ??
            (() => resolveRegistryAuth(image, { onWarning: (m) => ctx.log.system(`registry auth: ${m}`) })),
          signal,
          onPullStart: () => ctx.log.system(`pulling ${image}`),
          onProgress: (line) => ctx.log.system(`pull: ${line}`),
        });
        if (pulled) ctx.log.system(`pulled ${image}`);
      } catch (err) {
        if (signal.aborted) throw stopped();
        throw new TaskFailure(unreachableMessage(err, a.dockerHost) ?? (err as Error).message);
      }
      if (signal.aborted) throw stopped();

      // 4. Host temp dir: <root>/airtasks-docker-XXXX (0700) holding variables/ and tmp/.
      const hostRoot = process.env[HOST_TMP_ENV] || os.tmpdir();
      try {
        hostDir = await mkdtemp(path.join(hostRoot, 'airtasks-docker-'));
      } catch (err) {
        throw new TaskFailure(
          `cannot make the task's temp dir under ${hostRoot} (${HOST_TMP_ENV}): ${(err as Error).message}`,
        );
      }
      const mounts: Docker.MountSettings[] = [];
      const env: Record<string, string> = { ...taskEnv(ctx) };
      if (a.tmpDir !== false) {
        const target = a.tmpDir ?? DEFAULT_CONTAINER_TMP_DIR;
        const dir = path.join(hostDir, 'tmp');
        await mkdir(dir);
        await chmod(dir, 0o1777); // any container user may write there; the 0700 parent keeps host users out
        mounts.push({ Type: 'bind', Source: dir, Target: target, ReadOnly: false });
        env.AIRTASKS_TMP_DIR = target;
      }
      if (a.variables !== undefined) mounts.push(...(await writeVariables(hostDir, variables, a)));
      for (const [k, v] of Object.entries(a.env ?? {})) env[k] = render(String(v), tpl);

      // 5. Create, start, follow, wait.
      const gpuIds = lease?.ids;
      const deviceRequests = deviceRequestsFor(gpuRequest, gpuIds);
      if (runtime === 'nvidia' && gpuRequest !== undefined && env.NVIDIA_VISIBLE_DEVICES === undefined) {
        const visible = gpuIds
          ? gpuIds.join(',')
          : gpuRequest === 'all'
            ? 'all'
            : Array.isArray(gpuRequest)
              ? gpuRequest.join(',')
              : undefined;
        if (visible) env.NVIDIA_VISIBLE_DEVICES = visible;
      }
      const hostConfig: Docker.HostConfig = {
        AutoRemove: false,
        Mounts: mounts,
        ...(a.binds?.length ? { Binds: [...a.binds] } : {}),
        ...(a.cpus !== undefined ? { NanoCpus: nanoCpus(a.cpus) } : {}),
        ...(a.memory !== undefined ? { Memory: parseBytes(a.memory, 'memory') } : {}),
        ...(a.shmSize !== undefined ? { ShmSize: parseBytes(a.shmSize, 'shmSize') } : {}),
        ...(a.networkMode ? { NetworkMode: a.networkMode } : {}),
        ...(a.runtime ? { Runtime: a.runtime } : {}),
        ...(deviceRequests ? { DeviceRequests: deviceRequests } : {}),
      };
      const create = buildCreateOptions(a, {
        image,
        cmd: commandOf(a.command, tpl),
        entrypoint: a.entrypoint === undefined ? undefined : toArgv(a.entrypoint),
        env,
        labels: { ...a.labels, ...taskLabels(ctx.run) },
        hostConfig,
      });
      if (create.HostConfig?.AutoRemove) {
        ctx.log.system(
          'AutoRemove is ignored: the container is removed after its logs and exit code are read',
        );
        create.HostConfig.AutoRemove = false;
      }
      const argv = [
        ...(create.Entrypoint ? toArgv(create.Entrypoint as string | string[]) : []),
        ...(create.Cmd ? toArgv(create.Cmd as string | string[]) : []),
      ];
      try {
        container = await docker.createContainer(create);
      } catch (err) {
        const msg = engineMessage(err);
        ctx.log.system(`docker engine: ${msg}`);
        throw new TaskFailure(`creating the container failed: ${msg}`);
      }
      const short = container.id.slice(0, 12);
      ctx.log.system(
        `container ${short} created from ${image}${argv.length ? `: ${argv.join(' ')}` : ' (image default command)'}`,
      );
      if (signal.aborted) throw stopped();
      const collected = collectOutput(a, ctx);
      let attached: { done: Promise<void>; close(): void };
      try {
        attached = await attachOutput(container, Boolean(create.Tty), collected.handlers);
      } catch (err) {
        throw new TaskFailure(`attaching to container ${short} failed: ${engineMessage(err)}`);
      }
      try {
        await container.start();
      } catch (err) {
        attached.close();
        const msg = engineMessage(err);
        ctx.log.system(`docker engine: ${msg}`);
        throw new TaskFailure(`starting container ${short} failed: ${msg}`);
      }
      const waited = (await container.wait()) as WaitResult;
      await Promise.race([attached.done, sleep(LOGS_DRAIN_MS, undefined, { unref: true })]);
      attached.close();
      if (signal.aborted) {
        ctx.log.system(`container ${short} stopped (${String(signal.reason ?? 'aborted')})`);
        throw stopped();
      }
      return await exitResult(container, waited, collected.output(), ctx);
    } catch (err) {
      if (err instanceof TaskFailure) throw err;
      if (signal.aborted) throw stopped();
      throw new TaskFailure(unreachableMessage(err, a.dockerHost) ?? `docker: ${engineMessage(err)}`);
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (container) {
        const short = container.id.slice(0, 12);
        if (signal.aborted) await stopContainer(container, a.stopTimeout ?? 1).catch(() => undefined);
        if (keep) ctx.log.system(`container ${short} kept (keepContainer)`);
        else {
          await removeContainer(container).then(
            () => ctx.log.system(`container ${short} removed`),
            (err: unknown) => ctx.log.system(`removing container ${short} failed: ${(err as Error).message}`),
          );
        }
      }
      if (hostDir) await rm(hostDir, { recursive: true, force: true }).catch(() => undefined);
      lease?.release();
    }
  },
};

/** Output handlers: stdout/stderr to the task log, keeping what the task's output will be made of. */
function collectOutput(a: DockerArgs, ctx: OperatorContext) {
  const all: string[] = [];
  let last = '';
  const keepAll = a.output === 'all';
  return {
    handlers: {
      stdout: (l: string) => {
        ctx.log.stdout(l);
        if (keepAll) all.push(l);
        if (l.trim() !== '') last = l;
      },
      stderr: (l: string) => ctx.log.stderr(l),
    },
    output: () => (a.output === 'none' ? null : keepAll ? all.join('\n') : last),
  };
}

type WaitResult = { StatusCode?: number; Error?: { Message?: string } | null };

/** The try's result from a container that has exited: output on exit code 0, else a TaskFailure. */
async function exitResult(
  container: Docker.Container,
  waited: WaitResult,
  output: unknown,
  ctx: OperatorContext,
): Promise<OperatorResult> {
  const code = waited.StatusCode ?? null;
  let oom = false;
  try {
    oom = Boolean((await container.inspect()).State?.OOMKilled);
  } catch {
    // Gone already (removed by someone else): the exit code is all we know.
  }
  ctx.log.system(
    `container ${container.id.slice(0, 12)} exited with code ${code}${oom ? ' (killed: out of memory)' : ''}`,
  );
  if (code !== 0) {
    const why = oom
      ? ' (out of memory: raise `memory`)'
      : waited.Error?.Message
        ? ` (${waited.Error.Message})`
        : '';
    throw new TaskFailure(`container exited with code ${code}${why}`, code);
  }
  return { output, exitCode: 0 };
}

/**
 * Takes over the container of an earlier try whose worker was lost: follows it to its end if it still
 * runs, or reads what it printed and its exit code if it has ended, then removes it (unless kept).
 * Only containers on this worker's engine can be found; on another host the task runs again.
 */
async function adoptEarlierTry(
  docker: Docker,
  info: Docker.ContainerInfo & { tryNumber: number },
  a: DockerArgs,
  ctx: OperatorContext,
): Promise<OperatorResult> {
  const container = docker.getContainer(info.Id);
  const short = info.Id.slice(0, 12);
  ctx.log.system(
    `container ${short} of try ${info.tryNumber} is ${info.State} (its worker was lost): ` +
      'taking its result instead of starting the task again',
  );
  const onAbort = () => void stopContainer(container, a.stopTimeout ?? 1).catch(() => undefined);
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    const collected = collectOutput(a, ctx);
    const tty = Boolean((await container.inspect()).Config?.Tty);
    await followLogs(container, tty, collected.handlers);
    const waited = (await container.wait()) as WaitResult;
    if (ctx.signal.aborted) throw new TaskFailure(`stopped: ${String(ctx.signal.reason ?? 'aborted')}`);
    return await exitResult(container, waited, collected.output(), ctx);
  } catch (err) {
    if (err instanceof TaskFailure) throw err;
    throw new TaskFailure(
      `following container ${short} of try ${info.tryNumber} failed: ${engineMessage(err)}`,
    );
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    if (a.keepContainer) ctx.log.system(`container ${short} kept (keepContainer)`);
    else await removeContainer(container).catch(() => undefined);
  }
}

function checkArgs(raw: Record<string, unknown>): DockerArgs {
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

/** Reads every variable the task mounts; fails naming all the missing keys at once. */
async function readVariables(ctx: OperatorContext, a: DockerArgs): Promise<VariableFile[]> {
  if (a.variables === undefined) return [];
  const wanted: Array<{ key: string; target?: string }> = Array.isArray(a.variables)
    ? a.variables.map((key) => ({ key }))
    : Object.entries(a.variables).map(([key, target]) => ({ key, target }));
  const mountPoint = a.variablesMountPoint ?? DEFAULT_VARIABLES_MOUNT_POINT;
  if (!path.posix.isAbsolute(mountPoint)) {
    throw new TaskFailure(
      `variablesMountPoint must be an absolute path in the container, not "${mountPoint}"`,
    );
  }
  for (const w of wanted) {
    if (w.target === undefined && (w.key === '' || w.key === '.' || w.key === '..' || /[/\0]/.test(w.key))) {
      throw new TaskFailure(
        `variable key "${w.key}" cannot be a file name under ${mountPoint}: give it a path with the key -> path form`,
      );
    }
    if (w.target !== undefined && !path.posix.isAbsolute(w.target)) {
      throw new TaskFailure(
        `the path for variable "${w.key}" must be absolute in the container, not "${w.target}"`,
      );
    }
  }
  const values = await Promise.all(wanted.map((w) => ctx.variable(w.key)));
  const missing = wanted.filter((_, i) => values[i] === undefined).map((w) => w.key);
  if (missing.length > 0) {
    throw new TaskFailure(
      `variable${missing.length > 1 ? 's' : ''} ${missing.map((k) => `"${k}"`).join(', ')} ` +
        `${missing.length > 1 ? 'do' : 'does'} not exist: set ${missing.length > 1 ? 'them' : 'it'} with \`airtasks variables set\``,
    );
  }
  return wanted.map((w, i) => ({ key: w.key, value: values[i]!, target: w.target }));
}

/** Writes the variable files under hostDir and returns the read-only mounts that show them in the container. */
async function writeVariables(
  hostDir: string,
  files: VariableFile[],
  a: DockerArgs,
): Promise<Docker.MountSettings[]> {
  const dir = path.join(hostDir, 'variables');
  await mkdir(dir, { mode: 0o755 });
  await chmod(dir, 0o755);
  if (Array.isArray(a.variables)) {
    for (const f of files) await writeFile(path.join(dir, f.key), f.value, { mode: 0o644 });
    const target = a.variablesMountPoint ?? DEFAULT_VARIABLES_MOUNT_POINT;
    return [{ Type: 'bind', Source: dir, Target: target, ReadOnly: true }];
  }
  const mounts: Docker.MountSettings[] = [];
  for (const [i, f] of files.entries()) {
    const source = path.join(dir, String(i));
    await writeFile(source, f.value, { mode: 0o644 });
    mounts.push({ Type: 'bind', Source: source, Target: f.target!, ReadOnly: true });
  }
  return mounts;
}

function commandOf(
  command: string | string[] | undefined,
  tpl: Record<string, unknown>,
): string[] | undefined {
  if (command === undefined) return undefined;
  if (typeof command === 'string') return ['/bin/sh', '-c', render(command, tpl)];
  return command.map((c) => render(c, tpl));
}

function toArgv(v: string | string[]): string[] {
  return typeof v === 'string' ? [v] : v;
}

function deviceRequestsFor(
  request: GpuRequest | undefined,
  assigned: readonly string[] | undefined,
): Docker.DeviceRequest[] | undefined {
  if (request === undefined) return undefined;
  const base = { Driver: 'nvidia', Capabilities: [['gpu']] };
  if (assigned) return assigned.length > 0 ? [{ ...base, DeviceIDs: [...assigned] }] : undefined;
  if (request === 'all') return [{ ...base, Count: -1 }];
  if (typeof request === 'number') return request > 0 ? [{ ...base, Count: request }] : undefined;
  return [{ ...base, DeviceIDs: request.map(String) }];
}

function describeRequest(request: GpuRequest): string {
  return request === 'all' ? 'all' : typeof request === 'number' ? String(request) : request.join(', ');
}

interface Built {
  image: string;
  cmd: string[] | undefined;
  entrypoint: string[] | undefined;
  env: Record<string, string>;
  labels: Record<string, string>;
  hostConfig: Docker.HostConfig;
}

/** The create request, with the escape hatches merged last: hostConfig into HostConfig, then createOptions. */
export function buildCreateOptions(a: DockerArgs, b: Built): Docker.ContainerCreateOptions {
  const extraHost = (a.hostConfig ?? {}) as Docker.HostConfig;
  const extraCreate = (a.createOptions ?? {}) as Docker.ContainerCreateOptions;
  const mergeHost = (base: Docker.HostConfig, over: Docker.HostConfig): Docker.HostConfig => ({
    ...base,
    ...over,
    // Lists of mounts add up: the task's own mounts (temp dir, variables) must stay.
    Mounts: [...(base.Mounts ?? []), ...(over.Mounts ?? [])],
    Binds: [...(base.Binds ?? []), ...(over.Binds ?? [])],
  });
  const host = mergeHost(mergeHost(b.hostConfig, extraHost), extraCreate.HostConfig ?? {});
  if (host.Binds?.length === 0) delete host.Binds;
  const opts: Docker.ContainerCreateOptions = {
    Image: b.image,
    Env: Object.entries(b.env).map(([k, v]) => `${k}=${v}`),
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    OpenStdin: false,
    ...(b.cmd ? { Cmd: b.cmd } : {}),
    ...(b.entrypoint ? { Entrypoint: b.entrypoint } : {}),
    ...(a.user ? { User: a.user } : {}),
    ...(a.workingDir ? { WorkingDir: a.workingDir } : {}),
    ...extraCreate,
    // The airtasks labels win: recovery finds the container by them.
    Labels: { ...extraCreate.Labels, ...b.labels },
    HostConfig: host,
  };
  return opts;
}

function taskEnv(ctx: OperatorContext): Record<string, string> {
  return {
    AIRTASKS_DAG_ID: ctx.run.dagId,
    AIRTASKS_RUN_ID: ctx.run.runId,
    AIRTASKS_TASK_ID: ctx.run.taskId,
    AIRTASKS_TRY_NUMBER: String(ctx.run.tryNumber),
    AIRTASKS_LOGICAL_DATE: ctx.run.logicalDate.toISOString(),
    AIRTASKS_CONF: JSON.stringify(ctx.run.conf),
  };
}
