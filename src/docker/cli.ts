/**
 * The docker CLI (and Compose v1's `docker-compose`) as a child process, for what the engine API does
 * not do: stack deploy and rm, compose. One place for the engine address, stdin, output and errors.
 */
import { execa } from 'execa';

export type DockerProgram = 'docker' | 'docker-compose';

export interface DockerCliOptions {
  /** The engine to talk to (DOCKER_HOST for this call); default: the environment's. */
  dockerHost?: string;
  cwd?: string;
  /** Written to the command's stdin. */
  input?: string | Buffer;
  /** More environment variables, over this process's. */
  env?: Record<string, string>;
  timeoutMs?: number;
  /** How the error message calls the command (default: the whole command line). */
  name?: string;
}

export interface DockerCliResult {
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved, as a terminal would show them. */
  output: string;
}

/** A docker CLI command that could not run, or exited with an error; carries what it printed. */
export class DockerCliError extends Error {
  readonly program: DockerProgram;
  /** The command line that was run. */
  readonly command: string;
  /** undefined when the program did not start, or was killed. */
  readonly exitCode: number | undefined;
  /** Its stdout and stderr, interleaved. */
  readonly output: string;
  /** The program is not on PATH. */
  readonly notInstalled: boolean;

  constructor(
    message: string,
    o: Pick<DockerCliError, 'program' | 'command' | 'exitCode' | 'output' | 'notInstalled'> & {
      cause?: unknown;
    },
  ) {
    super(message, { cause: o.cause });
    this.name = 'DockerCliError';
    this.program = o.program;
    this.command = o.command;
    this.exitCode = o.exitCode;
    this.output = o.output;
    this.notInstalled = o.notInstalled;
  }
}

/** Runs `program args...`; resolves with its output when it exits 0, else throws a DockerCliError. */
export async function runDockerCli(
  program: DockerProgram,
  args: string[],
  o: DockerCliOptions = {},
): Promise<DockerCliResult> {
  const command = [program, ...args].join(' ');
  const name = o.name ?? command;
  const r = await execa(program, args, {
    cwd: o.cwd,
    // No stdin unless given: a command that would read it (a prompt) ends instead of waiting.
    ...(o.input === undefined ? { stdin: 'ignore' as const } : { input: o.input }),
    env: { ...o.env, ...(o.dockerHost ? { DOCKER_HOST: o.dockerHost } : {}) },
    timeout: o.timeoutMs,
    reject: false,
    all: true,
  });
  const output = r.all ?? '';
  if (r.exitCode === 0) return { stdout: r.stdout, stderr: r.stderr, output };
  const failed = { program, command, exitCode: r.exitCode, output, cause: r.cause };
  if (r.code === 'ENOENT')
    throw new DockerCliError(`${name} failed: ${program} is not installed (not found on PATH)`, {
      ...failed,
      notInstalled: true,
    });
  const why = r.timedOut
    ? `timed out after ${Math.round((o.timeoutMs ?? 0) / 1000)}s`
    : r.exitCode === undefined
      ? r.shortMessage
      : `exit ${r.exitCode}`;
  throw new DockerCliError(`${name} failed (${why}):\n${output}`.trim(), { ...failed, notInstalled: false });
}
