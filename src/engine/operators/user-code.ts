/**
 * The worker's side of running a DAG file's function (a node task, a branch, a callback, a custom
 * operator, a trigger's conf or items): the call goes to a thread of the process host as data, with the
 * try's environment (the worker's scrubbed of the engine's variables, and the try's own AIRTASKS_*); log
 * lines and variable reads come back as messages (the worker reads the database and registers secrets for
 * masking); the result comes back as JSON. A stopped call (timeout, cancel) ends at once here, and its
 * thread is ended by the host even in a synchronous loop.
 */
import type { CallbackContext } from '../dag/context.js';
import { startCall } from './process-host.js';
import { HostLost } from './process-host-protocol.js';
import { gpuEnv, taskEnv } from './task-env.js';
import { taskUser } from './task-user.js';
import { TaskFailure, TaskLost, type OperatorContext, type RunInfo, type TaskLog } from './types.js';

/** What a thread runs, as data. */
export interface UserCall {
  kind: 'task' | 'custom' | 'conf' | 'items' | 'callback';
  /** The DAG file, as the worker's dags folder and the file's place in it. */
  dagsFolder: string;
  fileloc: string;
  dagId: string;
  /** Where the function is kept in the DAG file (functionKey). */
  key: string;
  run: WireRun;
  upstream: string[];
  /** The variables added to the host's environment for the call. */
  env: Record<string, string>;
  /** custom: the operator's name and the task's stored arguments. */
  operator?: string;
  args?: Record<string, unknown>;
  /** items: the most items taken (one more is read, to report the excess). */
  maxItems?: number;
  callback?: Pick<CallbackContext, 'event' | 'state' | 'error'> & { forTask: boolean };
  /** The GPUs lent to the try (its env says so too), or null. */
  gpuIds: string[] | null;
}

/** The call of a try's own function (by default the task's, stored under its task id) in its DAG file. */
export function taskCall(ctx: OperatorContext, kind: UserCall['kind'], key = ctx.task.taskId) {
  return {
    kind,
    dagsFolder: ctx.dagsFolder,
    fileloc: ctx.dag.fileloc,
    dagId: ctx.dag.dagId,
    key,
    run: ctx.run,
    upstream: ctx.task.upstream,
  };
}

/** RunInfo as data. */
export type WireRun = Omit<RunInfo, 'logicalDate' | 'outputs'> & {
  logicalDate: string;
  outputs: Array<[string, unknown]>;
};

export function toWire(run: RunInfo): WireRun {
  return { ...run, logicalDate: run.logicalDate.toISOString(), outputs: [...run.outputs] };
}

export function fromWire(run: WireRun): RunInfo {
  return { ...run, logicalDate: new Date(run.logicalDate), outputs: new Map(run.outputs) };
}

export interface CallIo {
  log: TaskLog;
  signal: AbortSignal;
  variable(key: string): Promise<string | undefined>;
  workerId?: string;
  gpuIds?: readonly string[];
}

/**
 * Runs the call in the process host; resolves to the function's return value (JSON data: undefined is
 * null), rejects with a TaskFailure (its message; a thrown error's stack is in the log), a TaskLost when
 * the host ended, or `stopped: <reason>` at once when the signal aborts.
 */
export async function callUserCode(
  c: Omit<UserCall, 'run' | 'env' | 'gpuIds'> & { run: RunInfo },
  io: CallIo,
): Promise<unknown> {
  if (io.signal.aborted) throw new TaskFailure(`stopped: ${String(io.signal.reason ?? 'aborted')}`);
  const call: UserCall = {
    ...c,
    run: toWire(c.run),
    env: { ...taskEnv({ run: c.run, workerId: io.workerId }), ...gpuEnv(io) },
    gpuIds: io.gpuIds ? [...io.gpuIds] : null,
  };
  const hosted = startCall(
    call,
    { stdout: (l) => io.log.stdout(l), stderr: (l) => io.log.stderr(l), variable: (k) => io.variable(k) },
    taskUser(),
  );
  let onAbort: (() => void) | undefined;
  try {
    const end = await Promise.race([
      hosted.done,
      new Promise<never>((_, reject) => {
        onAbort = () => {
          const reason = String(io.signal.reason ?? 'aborted');
          hosted.stop(reason);
          reject(new TaskFailure(`stopped: ${reason}`));
        };
        io.signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
    if (!end.ok) throw new TaskFailure(end.message);
    if (end.json === null) throw new TaskFailure('the task returned a value that is not JSON-serialisable');
    return JSON.parse(end.json) as unknown;
  } catch (err) {
    if (err instanceof HostLost) throw new TaskLost(err.message);
    throw err;
  } finally {
    if (onAbort) io.signal.removeEventListener('abort', onAbort);
  }
}
