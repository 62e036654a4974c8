/** A docker task's image: registry credentials from a variable, and the pull under the task's pull policy. */
import type Docker from 'dockerode';
import { parseAuthValue, resolveRegistryAuth, type RegistryAuth } from '../../docker/auth.js';
import { unreachableMessage } from '../../docker/engine.js';
import { ensureImage } from '../../docker/images.js';
import type { DockerArgs } from './docker-args.js';
import { stopped } from './docker-stop.js';
import { TaskFailure, type OperatorContext } from './types.js';

/** The credentials in the registryAuthVariable; undefined when the task names none. */
export async function readRegistryAuth(
  ctx: OperatorContext,
  a: DockerArgs,
  image: string,
): Promise<RegistryAuth | undefined> {
  if (!a.registryAuthVariable) return undefined;
  const value = await ctx.variable(a.registryAuthVariable);
  if (value === undefined) {
    throw new TaskFailure(`variable "${a.registryAuthVariable}" (registryAuthVariable) does not exist`);
  }
  try {
    return parseAuthValue(value, image);
  } catch (err) {
    throw new TaskFailure(`variable "${a.registryAuthVariable}": ${(err as Error).message}`);
  }
}

/** Makes sure the engine has the image, pulling it as the policy says; progress goes to the task log. */
export async function pullImage(
  docker: Docker,
  image: string,
  a: DockerArgs,
  auth: RegistryAuth | undefined,
  ctx: OperatorContext,
): Promise<void> {
  const policy = a.pullPolicy ?? 'missing';
  try {
    const { pulled } = await ensureImage(docker, image, {
      policy,
      // The Docker config (and its credential helpers) is read only when a pull happens.
      auth:
        auth ??
        (() => resolveRegistryAuth(image, { onWarning: (m) => ctx.log.system(`registry auth: ${m}`) })),
      signal: ctx.signal,
      onPullStart: () => ctx.log.system(`pulling ${image}`),
      onProgress: (line) => ctx.log.system(`pull: ${line}`),
    });
    if (pulled) ctx.log.system(`pulled ${image}`);
  } catch (err) {
    if (ctx.signal.aborted) throw stopped(ctx.signal);
    throw new TaskFailure(unreachableMessage(err, a.dockerHost) ?? (err as Error).message);
  }
}
