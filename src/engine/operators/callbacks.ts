/**
 * Task and run callbacks (onSuccess, onFailure, onRetry, onRunSuccess, onRunFailure), run in a worker:
 * a templated bash command or a function of the DAG file. A callback's own failure is reported to its
 * caller, who logs it; it never changes the task's or the run's result.
 */
import type { CallbackContext } from '../dag/context.js';
import type { CallbackSpec, SerializedDag, SerializedTask } from '../../core/dag-model.js';
import { bashOperator } from './bash.js';
import type { RunInfo, TaskLog } from './types.js';
import { callUserCode } from './user-code.js';

export const DEFAULT_CALLBACK_TIMEOUT_MS = 5 * 60_000;

export interface CallbackInvocation {
  spec: CallbackSpec;
  /** Where a function callback is kept in the DAG file (functionKey). */
  key: string;
  dag: SerializedDag;
  dagsFolder: string;
  event: CallbackContext['event'];
  state: string;
  error: string | null;
  /** The run (and for task callbacks the try) the callback is about. */
  run: RunInfo;
  /** True for task callbacks: the context names the task and its try. */
  forTask: boolean;
  log: TaskLog;
  variable(key: string): Promise<string | undefined>;
  timeoutMs?: number;
  /** Aborted when the worker must stop. */
  signal?: AbortSignal;
}

/** Runs one callback; resolves to its error message, or null when it succeeded. Never throws. */
export async function runCallback(c: CallbackInvocation): Promise<string | null> {
  const ms = c.timeoutMs ?? DEFAULT_CALLBACK_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(ms);
  const signal = c.signal ? AbortSignal.any([timeout, c.signal]) : timeout;
  try {
    if ('bash' in c.spec) {
      const task: SerializedTask = {
        taskId: c.run.taskId,
        operator: 'bash',
        upstream: [],
        queue: '',
        retries: 0,
        retryDelayMs: 0,
        retryExponentialBackoff: false,
        maxRetryDelayMs: 0,
        timeoutMs: ms,
        triggerRule: 'all_success',
        priorityWeight: 1,
        args: {
          command: c.spec.bash,
          env: {
            AIRTASKS_CALLBACK_EVENT: c.event,
            AIRTASKS_STATE: c.state,
            AIRTASKS_ERROR: c.error ?? '',
          },
        },
      };
      await bashOperator.execute({
        dag: c.dag,
        task,
        run: { ...c.run, templateVars: { event: c.event, state: c.state, error: c.error } },
        log: c.log,
        signal,
        dagsFolder: c.dagsFolder,
        variable: c.variable,
      });
    } else {
      // In a thread of the process host, as node tasks are.
      await callUserCode(
        {
          kind: 'callback',
          callback: { event: c.event, state: c.state, error: c.error, forTask: c.forTask },
          dagsFolder: c.dagsFolder,
          fileloc: c.dag.fileloc,
          dagId: c.dag.dagId,
          key: c.key,
          run: c.run,
          upstream: [],
        },
        { log: c.log, signal, variable: c.variable },
      );
    }
    return null;
  } catch (err) {
    if (timeout.aborted) return `timed out after ${ms} ms`;
    return (err as Error).message ?? String(err);
  }
}

/** A task log whose lines say they come from a callback. */
export function prefixedLog(log: TaskLog, prefix: string): TaskLog {
  return {
    stdout: (l) => log.stdout(`[${prefix}] ${l}`),
    stderr: (l) => log.stderr(`[${prefix}] ${l}`),
    system: (l) => log.system(`[${prefix}] ${l}`),
  };
}
