/**
 * The create-container request of a docker task: command, environment, mounts, resources, GPUs and labels,
 * with the task's escape hatches (hostConfig, createOptions) merged last.
 */
import type Docker from 'dockerode';
import { taskLabels } from '../../docker/containers.js';
import { nanoCpus, parseBytes } from '../../docker/units.js';
import { render, templateContext } from '../templates/render.js';
import type { ContainerCommand } from './docker-command.js';
import type { GpuRequest } from '../worker/gpus.js';
import type { DockerArgs } from './docker-args.js';
import { deviceRequestsFor, visibleDevices } from './docker-gpus.js';
import type { HostDirMounts } from './docker-host-dir.js';
import { taskEnv } from './task-env.js';
import type { OperatorContext } from './types.js';

/** What the steps before the container settled: its image, the host temp dir's mounts, its GPUs. */
export interface ContainerPlan extends HostDirMounts {
  image: string;
  runtime: string | undefined;
  gpuRequest: GpuRequest | undefined;
  /** The devices the worker assigned; undefined when the worker does not manage its GPUs. */
  gpuIds: readonly string[] | undefined;
  command: ContainerCommand;
}

export function createOptions(
  a: DockerArgs,
  ctx: OperatorContext,
  plan: ContainerPlan,
): Docker.ContainerCreateOptions {
  const tpl = templateContext(ctx.run);
  const env = containerEnv(a, ctx, plan, tpl);
  const deviceRequests = deviceRequestsFor(plan.gpuRequest, plan.gpuIds);
  const hostConfig: Docker.HostConfig = {
    AutoRemove: false,
    Mounts: plan.mounts,
    ...(a.binds?.length ? { Binds: [...a.binds] } : {}),
    ...(a.cpus !== undefined ? { NanoCpus: nanoCpus(a.cpus) } : {}),
    ...(a.memory !== undefined ? { Memory: parseBytes(a.memory, 'memory') } : {}),
    ...(a.shmSize !== undefined ? { ShmSize: parseBytes(a.shmSize, 'shmSize') } : {}),
    ...(a.networkMode ? { NetworkMode: a.networkMode } : {}),
    ...(a.runtime ? { Runtime: a.runtime } : {}),
    ...(deviceRequests ? { DeviceRequests: deviceRequests } : {}),
  };
  const create = buildCreateOptions(a, {
    image: plan.image,
    cmd: plan.command.cmd,
    entrypoint: a.entrypoint === undefined ? undefined : toArgv(a.entrypoint),
    env,
    labels: { ...a.labels, ...taskLabels(ctx.run) },
    hostConfig,
  });
  if (create.HostConfig?.AutoRemove) {
    ctx.log.system('AutoRemove is ignored: the container is removed after its logs and exit code are read');
    create.HostConfig.AutoRemove = false;
  }
  return create;
}

/** The task's AIRTASKS_* variables and scratch dir, then its own env (templated; it may override them). */
function containerEnv(
  a: DockerArgs,
  ctx: OperatorContext,
  plan: ContainerPlan,
  tpl: Record<string, unknown>,
): Record<string, string> {
  const env: Record<string, string> = { ...taskEnv(ctx) };
  delete env.AIRTASKS_CONF; // in plan.valuesEnv: in a file when it is large
  Object.assign(env, plan.valuesEnv, plan.command.env);
  if (plan.tmpDir !== undefined) env.AIRTASKS_TMP_DIR = plan.tmpDir;
  for (const [k, v] of Object.entries(a.env ?? {})) env[k] = render(String(v), tpl);
  if (
    plan.runtime === 'nvidia' &&
    plan.gpuRequest !== undefined &&
    env.NVIDIA_VISIBLE_DEVICES === undefined
  ) {
    const visible = visibleDevices(plan.gpuRequest, plan.gpuIds);
    if (visible) env.NVIDIA_VISIBLE_DEVICES = visible;
  }
  return env;
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

/** What the container will run (entrypoint, then command), as the task log shows it. */
export function argvOf(create: Docker.ContainerCreateOptions): string[] {
  return [
    ...(create.Entrypoint ? toArgv(create.Entrypoint as string | string[]) : []),
    ...(create.Cmd ? toArgv(create.Cmd as string | string[]) : []),
  ];
}

function toArgv(v: string | string[]): string[] {
  return typeof v === 'string' ? [v] : v;
}
