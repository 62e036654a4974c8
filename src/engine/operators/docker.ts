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
 *
 * The steps live in docker-*.ts: args, variables, gpus, image, host-dir, create, container, stop, and
 * recovery (the container of a try lost with its worker).
 */
import type Docker from 'dockerode';
import { findEarlierTry } from '../../docker/containers.js';
import { connectDocker, engineMessage, unreachableMessage } from '../../docker/engine.js';
import { normalizeImage } from '../../docker/images.js';
import type { GpuLease } from '../worker/gpus.js';
import { checkArgs, type DockerArgs } from './docker-args.js';
import { createContainer, disposeContainer, runContainer } from './docker-container.js';
import { containerCommand } from './docker-command.js';
import { createOptions } from './docker-create.js';
import { gpuRequestOf, leaseGpus } from './docker-gpus.js';
import { makeHostDir, mountHostDir, removeHostDir } from './docker-host-dir.js';
import { pullImage, readRegistryAuth } from './docker-image.js';
import { adoptEarlierTry } from './docker-recovery.js';
import { stopOnAbort, stopped } from './docker-stop.js';
import { readVariables } from './docker-variables.js';
import { TaskFailure, type Operator, type OperatorContext, type OperatorResult } from './types.js';

/** What a try holds until it ends, whichever step it ends in. */
interface Held {
  lease?: GpuLease | undefined;
  hostDir?: string;
  container?: Docker.Container;
}

export const dockerOperator: Operator = {
  name: 'docker',
  async execute(ctx: OperatorContext): Promise<OperatorResult> {
    const a = checkArgs(ctx.task.args);
    const image = normalizeImage(a.image);
    const signal = ctx.signal;

    // 1. The command (values passed as data), variables and the registry auth variable: all settled before
    // anything is created.
    const command = containerCommand(a, ctx);
    const variables = await readVariables(ctx, a);
    const auth = await readRegistryAuth(ctx, a, image);
    if (signal.aborted) throw stopped(signal);

    // A container of an earlier try may outlive its lost worker: take its result rather than run the task twice.
    const docker = connectDocker({ host: a.dockerHost });
    const earlier = await findEarlierTry(docker, ctx.run).catch(() => undefined);
    if (earlier) return adoptEarlierTry(docker, earlier, a, ctx);

    const runtime = a.runtime ?? (a.hostConfig?.Runtime as string | undefined);
    const gpuRequest = gpuRequestOf(a, runtime, ctx);
    const held: Held = {};
    const stopListening = stopOnAbort(signal, () => held.container, a);
    try {
      held.lease = await leaseGpus(gpuRequest, ctx); // 2.
      await pullImage(docker, image, a, auth, ctx); // 3.
      if (signal.aborted) throw stopped(signal);
      held.hostDir = await makeHostDir(); // 4.
      const conf = JSON.stringify(ctx.run.conf);
      const dir = await mountHostDir(held.hostDir, variables, a, command.files, conf);
      const gpuIds = held.lease?.ids;
      const create = createOptions(a, ctx, { image, ...dir, runtime, gpuRequest, gpuIds, command }); // 5.
      held.container = await createContainer(docker, create, image, ctx);
      if (signal.aborted) throw stopped(signal);
      return await runContainer(held.container, create, a, ctx);
    } catch (err) {
      throw failureOf(err, a, signal);
    } finally {
      stopListening(); // 6.
      if (held.container) await disposeContainer(held.container, a, ctx);
      if (held.hostDir) await removeHostDir(held.hostDir);
      held.lease?.release();
    }
  },
};

/** A step's error as the try's failure: a TaskFailure as it is, else the engine's words. */
function failureOf(err: unknown, a: DockerArgs, signal: AbortSignal): TaskFailure {
  if (err instanceof TaskFailure) return err;
  if (signal.aborted) return stopped(signal);
  return new TaskFailure(unreachableMessage(err, a.dockerHost) ?? `docker: ${engineMessage(err)}`);
}
