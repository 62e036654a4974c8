/** A docker task whose signal aborts (timeout, cancel, shutdown): its failure, and its container stopped. */
import type Docker from 'dockerode';
import { stopContainer } from '../../docker/containers.js';
import type { DockerArgs } from './docker-args.js';
import { TaskFailure } from './types.js';

export function stopped(signal: AbortSignal): TaskFailure {
  return new TaskFailure(`stopped: ${String(signal.reason ?? 'aborted')}`);
}

/** Stops the container (once there is one) when the signal aborts; returns what takes the listener off. */
export function stopOnAbort(
  signal: AbortSignal,
  container: () => Docker.Container | undefined,
  a: DockerArgs,
): () => void {
  const onAbort = () => {
    const c = container();
    if (c) void stopNow(c, a);
  };
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

/** SIGTERM, then SIGKILL after stopTimeout; a failed stop is let be: the container is removed next. */
export function stopNow(container: Docker.Container, a: DockerArgs): Promise<void> {
  return stopContainer(container, a.stopTimeout ?? 1).catch(() => undefined);
}
