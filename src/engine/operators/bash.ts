/** Runs a templated bash command; non-zero exit fails the task; the last stdout line is the output. */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { storableText } from '../storable.js';
import { render, templateContext } from '../template.js';
import { plainCommand } from './plain-command.js';
import { forgetGroup, registerGroup } from './process-reaper.js';
import { TaskFailure, type Operator, type OperatorContext, type OperatorResult } from './types.js';

const KILL_GRACE_MS = 5000;

export const bashOperator: Operator = {
  name: 'bash',
  async execute(ctx: OperatorContext): Promise<OperatorResult> {
    const args = ctx.task.args as { command: string; env?: Record<string, string>; cwd?: string };
    const command = render(args.command, templateContext(ctx.run));
    ctx.log.system(`$ ${command}`);
    const cwd = args.cwd ?? ctx.dagsFolder;
    const env = { ...workerEnv(), ...taskEnv(ctx), ...args.env };
    const plain = plainCommand(command, env, cwd);
    // PWD as bash would have set it. A program that could not be started after all (gone since it was
    // found) goes to bash, which reports it as bash does.
    const direct = plain
      ? await runGroup(
          plain.file,
          plain.args,
          { cwd, env: { ...env, PWD: path.resolve(cwd) }, argv0: plain.argv0 },
          ctx,
        ).catch(() => null)
      : null;
    const { exitCode, signal, last } = direct ?? (await runGroup('bash', ['-c', command], { cwd, env }, ctx));

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
  },
};

interface Exit {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The last non-blank stdout line. */
  last: string;
}

/**
 * Runs a program as the leader of its own process group, so a timeout or cancel kills everything it
 * started. The group is registered with the worker's reaper, which kills it if the worker dies, so no task
 * keeps running unseen after its worker is gone. Rejects when the program could not be started at all.
 */
async function runGroup(
  file: string,
  argv: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; argv0?: string },
  ctx: OperatorContext,
): Promise<Exit> {
  const child = spawn(file, argv, { ...opts, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const pgid = child.pid;
  if (pgid) registerGroup(pgid);
  let grace: NodeJS.Timeout | undefined;
  let exited = false;
  // Once the command has exited, anything it left running in the background in its group is ended too;
  // then the group is forgotten, and never signalled again: its id may be reused.
  child.on('exit', () => {
    exited = true;
    clearTimeout(grace);
    killGroup(pgid, 'SIGKILL');
    if (pgid) forgetGroup(pgid);
  });
  let last = '';
  const out = createInterface({ input: child.stdout! });
  out.on('line', (l) => {
    ctx.log.stdout(l);
    if (l.trim() !== '') last = l;
  });
  createInterface({ input: child.stderr! }).on('line', (l) => ctx.log.stderr(l));

  const kill = () => {
    if (exited) return;
    killGroup(pgid, 'SIGTERM');
    grace = setTimeout(() => killGroup(pgid, 'SIGKILL'), KILL_GRACE_MS).unref();
  };
  ctx.signal.addEventListener('abort', kill, { once: true });
  try {
    return await new Promise<Exit>((resolve, reject) => {
      child.on('error', (err) => {
        if (!pgid) reject(err); // not started: nothing ran
      });
      child.on('close', (exitCode, signal) => resolve({ exitCode, signal, last }));
    });
  } finally {
    ctx.signal.removeEventListener('abort', kill);
  }
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals) {
  if (!pid) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // Already gone.
  }
}

/**
 * The worker's environment without the secret key: tasks read secrets as variables, never the key. Copied
 * once: copying process.env is slow (each read crosses into C++), half a millisecond per task here.
 */
let baseEnv: NodeJS.ProcessEnv | null = null;
function workerEnv(): NodeJS.ProcessEnv {
  if (!baseEnv) {
    baseEnv = { ...process.env };
    delete baseEnv.AIRTASKS_SECRET_KEY;
    delete baseEnv.AIRTASKS_SECRET_KEY_FILE;
  }
  return baseEnv;
}

function taskEnv(ctx: OperatorContext): Record<string, string> {
  return {
    ...(ctx.workerId ? { AIRTASKS_WORKER_ID: ctx.workerId } : {}),
    AIRTASKS_DAG_ID: ctx.run.dagId,
    AIRTASKS_RUN_ID: ctx.run.runId,
    AIRTASKS_TASK_ID: ctx.run.taskId,
    AIRTASKS_TRY_NUMBER: String(ctx.run.tryNumber),
    AIRTASKS_LOGICAL_DATE: ctx.run.logicalDate.toISOString(),
    AIRTASKS_CONF: JSON.stringify(ctx.run.conf),
  };
}
