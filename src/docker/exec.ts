/**
 * Running a command in a running container (`docker exec` through the engine API): its stdout and
 * stderr to the given streams, stdin from the given stream when there is one, and its exit code.
 */
import type { Readable, Writable } from 'node:stream';
import type Docker from 'dockerode';

export interface ExecIo {
  stdout: Writable;
  stderr: Writable;
  /** Data for the command's stdin (its end closes the command's stdin); none: no stdin. */
  stdin?: Readable;
}

/** Runs `cmd` in the container (its working directory and environment); resolves to its exit code. */
export async function execInContainer(
  docker: Docker,
  containerId: string,
  cmd: string[],
  io: ExecIo,
): Promise<number> {
  const exec = await docker.getContainer(containerId).exec({
    Cmd: cmd,
    AttachStdin: !!io.stdin,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
  });
  const stream = (await exec.start({ hijack: true, stdin: !!io.stdin })) as NodeJS.ReadWriteStream & {
    destroy(): void;
  };
  await new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', reject);
    docker.modem.demuxStream(stream, io.stdout, io.stderr);
    if (io.stdin) {
      // The end of the caller's stdin half-closes the connection: the command reads EOF.
      io.stdin.on('data', (chunk: Buffer) => stream.write(chunk));
      io.stdin.on('end', () => stream.end());
      io.stdin.on('error', () => stream.end());
    }
  });
  io.stdin?.removeAllListeners('data');
  // The output can end a moment before the engine records the exit.
  for (let i = 0; ; i++) {
    const info = (await exec.inspect()) as { ExitCode: number | null; Running: boolean };
    if (!info.Running || i >= 50) return info.ExitCode ?? 1;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The command a container was started with before its arguments (its entrypoint), for an exec. */
export async function containerEntrypoint(docker: Docker, containerId: string): Promise<string[]> {
  const info = (await docker.getContainer(containerId).inspect()) as {
    Config?: { Entrypoint?: string[] | string | null };
  };
  const e = info.Config?.Entrypoint;
  if (Array.isArray(e)) return e;
  return e ? ['sh', '-c', `${e} "$@"`, 'sh'] : [];
}
