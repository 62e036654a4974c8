/** Recovery of a lost try's container: a try lost with its worker may leave it running, or ended. */
import type Docker from 'dockerode';
import { followLogs, removeContainer } from '../../docker/containers.js';
import { engineMessage } from '../../docker/engine.js';
import type { DockerArgs } from './docker-args.js';
import { collectOutput, exitResult, type WaitResult } from './docker-container.js';
import { stopOnAbort, stopped } from './docker-stop.js';
import { TaskFailure, type OperatorContext, type OperatorResult } from './types.js';

/**
 * Takes over the container of an earlier try whose worker was lost: follows it to its end if it still
 * runs, or reads what it printed and its exit code if it has ended, then removes it (unless kept).
 * Only containers on this worker's engine can be found; on another host the task runs again.
 */
export async function adoptEarlierTry(
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
  const stopListening = stopOnAbort(ctx.signal, () => container, a);
  try {
    const collected = collectOutput(a, ctx);
    const tty = Boolean((await container.inspect()).Config?.Tty);
    await followLogs(container, tty, collected.handlers);
    const waited = (await container.wait()) as WaitResult;
    if (ctx.signal.aborted) throw stopped(ctx.signal);
    return await exitResult(container, waited, collected.output(), ctx);
  } catch (err) {
    if (err instanceof TaskFailure) throw err;
    throw new TaskFailure(
      `following container ${short} of try ${info.tryNumber} failed: ${engineMessage(err)}`,
    );
  } finally {
    stopListening();
    if (a.keepContainer) ctx.log.system(`container ${short} kept (keepContainer)`);
    else await removeContainer(container).catch(() => undefined);
  }
}
