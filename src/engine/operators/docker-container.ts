/**
 * A docker task's container: created, its output attached before it starts (stdout and stderr to the task
 * log, line by line), waited for, its exit code made the try's result; afterwards removed unless kept.
 */
import type Docker from 'dockerode';
import { sleep } from '../../core/backoff.js';
import { attachOutput, removeContainer } from '../../docker/containers.js';
import { engineMessage } from '../../docker/engine.js';
import type { DockerArgs } from './docker-args.js';
import { argvOf } from './docker-create.js';
import { stopNow, stopped } from './docker-stop.js';
import { TaskFailure, type OperatorContext, type OperatorResult } from './types.js';

const LOGS_DRAIN_MS = 10_000;

export async function createContainer(
  docker: Docker,
  create: Docker.ContainerCreateOptions,
  image: string,
  ctx: OperatorContext,
): Promise<Docker.Container> {
  const argv = argvOf(create);
  let container: Docker.Container;
  try {
    container = await docker.createContainer(create);
  } catch (err) {
    const msg = engineMessage(err);
    ctx.log.system(`docker engine: ${msg}`);
    throw new TaskFailure(`creating the container failed: ${msg}`);
  }
  ctx.log.system(
    `container ${container.id.slice(0, 12)} created from ${image}${argv.length ? `: ${argv.join(' ')}` : ' (image default command)'}`,
  );
  return container;
}

/** Starts the container and follows it to its end. */
export async function runContainer(
  container: Docker.Container,
  create: Docker.ContainerCreateOptions,
  a: DockerArgs,
  ctx: OperatorContext,
): Promise<OperatorResult> {
  const short = container.id.slice(0, 12);
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
  if (ctx.signal.aborted) {
    ctx.log.system(`container ${short} stopped (${String(ctx.signal.reason ?? 'aborted')})`);
    throw stopped(ctx.signal);
  }
  return await exitResult(container, waited, collected.output(), ctx);
}

/** After the try, however it ended: stops the container if the try was aborted, removes it unless kept. */
export async function disposeContainer(
  container: Docker.Container,
  a: DockerArgs,
  ctx: OperatorContext,
): Promise<void> {
  const short = container.id.slice(0, 12);
  if (ctx.signal.aborted) await stopNow(container, a);
  if (a.keepContainer ?? false) ctx.log.system(`container ${short} kept (keepContainer)`);
  else {
    await removeContainer(container).then(
      () => ctx.log.system(`container ${short} removed`),
      (err: unknown) => ctx.log.system(`removing container ${short} failed: ${(err as Error).message}`),
    );
  }
}

/** Output handlers: stdout/stderr to the task log, keeping what the task's output will be made of. */
export function collectOutput(a: DockerArgs, ctx: OperatorContext) {
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

export type WaitResult = { StatusCode?: number; Error?: { Message?: string } | null };

/** The try's result from a container that has exited: output on exit code 0, else a TaskFailure. */
export async function exitResult(
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
