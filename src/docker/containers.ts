/**
 * Containers of tasks: the labels that tie a container to its try, finding it again (recovery after a
 * worker crash), reading its output line by line, and stopping/removing it.
 */
import { createInterface } from 'node:readline';
import { PassThrough, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import { engineMessage, statusCode } from './engine.js';

export const LABEL = {
  dagId: 'airtasks.dag_id',
  runId: 'airtasks.run_id',
  taskId: 'airtasks.task_id',
  tryNumber: 'airtasks.try',
} as const;

export interface TaskKey {
  runId: string;
  taskId: string;
  tryNumber: number;
}

export function taskLabels(key: TaskKey & { dagId: string }): Record<string, string> {
  return {
    [LABEL.dagId]: key.dagId,
    [LABEL.runId]: key.runId,
    [LABEL.taskId]: key.taskId,
    [LABEL.tryNumber]: String(key.tryNumber),
  };
}

/** Containers (running or not) carrying all the given airtasks labels, newest first. */
export async function findTaskContainers(
  docker: Docker,
  key: Partial<TaskKey> & { dagId?: string },
): Promise<Docker.ContainerInfo[]> {
  const label: string[] = [];
  if (key.dagId !== undefined) label.push(`${LABEL.dagId}=${key.dagId}`);
  if (key.runId !== undefined) label.push(`${LABEL.runId}=${key.runId}`);
  if (key.taskId !== undefined) label.push(`${LABEL.taskId}=${key.taskId}`);
  if (key.tryNumber !== undefined) label.push(`${LABEL.tryNumber}=${key.tryNumber}`);
  if (label.length === 0) label.push(LABEL.runId);
  const list = await docker.listContainers({ all: true, filters: { label } });
  return list.sort((a, b) => b.Created - a.Created);
}

/** The container of one try of a task, or undefined; for a worker that restarts and finds its tasks' containers. */
export async function findTaskContainer(
  docker: Docker,
  key: TaskKey & { dagId?: string },
): Promise<Docker.ContainerInfo | undefined> {
  return (await findTaskContainers(docker, key))[0];
}

export interface LineHandlers {
  stdout(line: string): void;
  stderr(line: string): void;
}

/**
 * Attaches to a created container's output; call before starting it. Resolves once attached; `done`
 * settles when the output has ended and every line was delivered (once per line); `close` lets go
 * of the stream (for a container that will never start).
 *
 * Attaching reads the container's stdout/stderr directly, like `docker run` does; following the log
 * driver instead (`logs --follow`) can end before the driver has written the last (partial) line.
 */
export async function attachOutput(
  container: Docker.Container,
  tty: boolean,
  on: LineHandlers,
): Promise<{ done: Promise<void>; close(): void }> {
  const stream = (await container.attach({
    stream: true,
    stdout: true,
    stderr: true,
  })) as unknown as Readable;
  const done = splitLines(container, stream, tty, on);
  return { done, close: () => stream.destroy() };
}

/**
 * Reads a container's whole log from its start, line by line, and follows it until the container ends.
 * For a container this process did not start (adopted from a lost worker), where attaching would miss
 * what it printed before.
 */
export async function followLogs(container: Docker.Container, tty: boolean, on: LineHandlers): Promise<void> {
  const stream = (await container.logs({ follow: true, stdout: true, stderr: true })) as unknown as Readable;
  await splitLines(container, stream, tty, on);
}

/** The newest container of an earlier try of this task: left behind when its worker died. */
export async function findEarlierTry(
  docker: Docker,
  key: TaskKey,
): Promise<(Docker.ContainerInfo & { tryNumber: number }) | undefined> {
  const all = await findTaskContainers(docker, { runId: key.runId, taskId: key.taskId });
  return all
    .map((c) => ({ ...c, tryNumber: Number(c.Labels[LABEL.tryNumber]) }))
    .filter((c) => Number.isInteger(c.tryNumber) && c.tryNumber < key.tryNumber)
    .sort((a, b) => b.tryNumber - a.tryNumber)[0];
}

/** Splits a container's output stream (multiplexed unless it has a TTY) into stdout and stderr lines. */
function splitLines(
  container: Docker.Container,
  stream: Readable,
  tty: boolean,
  on: LineHandlers,
): Promise<void> {
  const out = new PassThrough();
  const err = new PassThrough();
  const done = Promise.all([lines(out, on.stdout), lines(err, on.stderr)]).then(() => undefined);
  if (tty) stream.pipe(out);
  else container.modem.demuxStream(stream, out, err);
  const end = () => {
    out.end();
    err.end();
  };
  stream.on('end', end);
  stream.on('close', end);
  stream.on('error', end);
  return done;
}

function lines(input: Readable, each: (line: string) => void): Promise<void> {
  return new Promise((resolve) => {
    const rl = createInterface({ input, crlfDelay: Infinity });
    rl.on('line', each);
    rl.on('close', resolve);
  });
}

/** Stops a container (SIGTERM, then SIGKILL after timeoutS); a container already stopped or gone is fine. */
export async function stopContainer(container: Docker.Container, timeoutS = 1): Promise<void> {
  try {
    await container.stop({ t: timeoutS });
  } catch (err) {
    const code = statusCode(err);
    if (code !== 304 && code !== 404)
      throw new Error(`stopping container failed: ${engineMessage(err)}`, { cause: err });
  }
}

/** Removes a container with its anonymous volumes; a container already gone is fine. */
export async function removeContainer(container: Docker.Container): Promise<void> {
  try {
    await container.remove({ force: true, v: true });
  } catch (err) {
    const code = statusCode(err);
    // 409: removal already in progress.
    if (code !== 404 && code !== 409)
      throw new Error(`removing container failed: ${engineMessage(err)}`, { cause: err });
  }
}
