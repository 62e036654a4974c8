/** Runs a templated bash command; non-zero exit fails the task; the last stdout line is the output. */
import { constants } from 'node:os';
import path from 'node:path';
import { storableText } from '../../core/storable.js';
import { templateContext } from '../templates/render.js';
import { renderShellCommand, UnsafeTemplateError } from '../templates/shell-command.js';
import { plainCommand } from './plain-command.js';
import { startProcess } from './process-host.js';
import { HostLost, NotStarted } from './process-host-protocol.js';
import { gpuEnv, taskEnv, workerEnv } from './task-env.js';
import { taskUser } from './task-user.js';
import { TaskFailure, TaskLost, type Operator, type OperatorContext, type OperatorResult } from './types.js';
import { makeValuesDir, removeValuesDir, ValueFiles } from './value-files.js';

const KILL_GRACE_MS = 5000;

export const bashOperator: Operator = {
  name: 'bash',
  async execute(ctx: OperatorContext): Promise<OperatorResult> {
    const args = ctx.task.args as { command: string; env?: Record<string, string>; cwd?: string };
    // Template values reach the command as variables of its environment, never as shell code.
    const rendered = shellCommand(args.command, ctx);
    ctx.log.system(`$ ${rendered.display}`);
    const command = rendered.script;
    const cwd = args.cwd ?? ctx.dagsFolder;
    // The process host's environment is the worker's without the engine's; a task's own go with each
    // command. The GPUs lent to it come last: a task sees only those.
    const own: Record<string, string> = { ...taskEnv(ctx), ...args.env, ...rendered.env, ...gpuEnv(ctx) };
    const files = new ValueFiles(rendered.files);
    files.takeLargeConf(own);
    const valuesDir = files.empty ? null : await makeValuesDir(taskUser());
    try {
      if (valuesDir) await files.place(valuesDir, valuesDir, own, false, taskUser());
      return await runCommand(command, own, cwd, ctx);
    } finally {
      if (valuesDir) await removeValuesDir(valuesDir);
    }
  },
};

function shellCommand(template: string, ctx: OperatorContext) {
  try {
    return renderShellCommand(template, templateContext(ctx.run));
  } catch (err) {
    if (err instanceof UnsafeTemplateError) throw new TaskFailure(`the command template: ${err.message}`);
    throw err;
  }
}

/** Runs the command (directly when it is one plain program call, else with bash) and judges its exit. */
async function runCommand(
  command: string,
  own: Record<string, string>,
  cwd: string,
  ctx: OperatorContext,
): Promise<OperatorResult> {
  const plain = plainCommand(command, { ...workerEnv(), ...own }, cwd);
  // PWD as bash would have set it. A program that could not be started after all (gone since it was
  // found) goes to bash, which reports it as bash does.
  const direct = plain
    ? await runGroup(
        plain.file,
        plain.args,
        { cwd, env: { ...own, PWD: path.resolve(cwd) }, argv0: plain.argv0 },
        ctx,
      ).catch((err: unknown) => {
        if (err instanceof NotStarted) return null;
        throw err;
      })
    : null;
  const { exitCode, signal, last } =
    direct ??
    (await runGroup('bash', ['-c', command], { cwd, env: own }, ctx).catch((err: unknown) => {
      if (!(err instanceof NotStarted)) throw err;
      const hint = err.code === 'E2BIG' ? ' (the command or its environment is too long)' : '';
      throw new TaskFailure(`bash could not be started: ${err.message}${hint}`);
    }));

  if (ctx.signal.aborted)
    throw new TaskFailure(`stopped: ${String(ctx.signal.reason ?? 'aborted')}`, exitCode);
  // A command killed by a signal is reported as a shell reports it: status 128 + the signal's number.
  const code = exitCode ?? (signal ? 128 + constants.signals[signal] : null);
  if (code !== 0) {
    const sig = code !== null && code > 128 ? `signal ${code - 128}` : null;
    throw new TaskFailure(sig ? `bash was killed by ${sig}` : `bash exited with code ${code}`, code);
  }
  // The last line is a convenience output: a stray NUL byte (binary output) must not fail the task.
  return { output: storableText(last), exitCode: 0 };
}

interface Exit {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The last non-blank stdout line. */
  last: string;
}

/**
 * Runs a program as the leader of its own process group, so a timeout or cancel kills everything it
 * started; the worker's process host starts it (off the worker's event loop) and kills the group if the
 * worker dies, so no task keeps running unseen after its worker is gone. Rejects with NotStarted when the
 * program could not be started at all.
 */
async function runGroup(
  file: string,
  args: string[],
  opts: { cwd: string; env: Record<string, string>; argv0?: string },
  ctx: OperatorContext,
): Promise<Exit> {
  let last = '';
  const proc = startProcess(
    { file, args, ...opts },
    {
      stdout: (l) => {
        ctx.log.stdout(l);
        if (l.trim() !== '') last = l;
      },
      stderr: (l) => ctx.log.stderr(l),
    },
    taskUser(),
  );
  let grace: NodeJS.Timeout | undefined;
  const kill = () => {
    proc.signal('SIGTERM');
    grace = setTimeout(() => proc.signal('SIGKILL'), KILL_GRACE_MS).unref();
  };
  ctx.signal.addEventListener('abort', kill, { once: true });
  if (ctx.signal.aborted) kill(); // aborted before the listener was there: the event will not come again
  try {
    const { code, signal } = await proc.exited;
    return { exitCode: code, signal, last };
  } catch (err) {
    if (err instanceof HostLost) throw new TaskLost(err.message);
    throw err;
  } finally {
    clearTimeout(grace);
    ctx.signal.removeEventListener('abort', kill);
  }
}
