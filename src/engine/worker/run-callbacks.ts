/**
 * Run callbacks in a worker: the scheduler queues one as a task instance named @<event> once the run has
 * ended, so that user code runs in a worker, never in the scheduler. Its try records the callback's own
 * outcome; the run's state is final already and nothing here can change it.
 */
import type { RunCallbackEvent } from '../../core/dag-model.js';
import type { Logger } from '../../core/logger.js';
import type { TaskMessage } from '../../core/states.js';
import { functionKey, RUN_CALLBACK_EVENTS } from '../dag/functions.js';
import type { VersionCache } from '../dag/versions.js';
import { runCallback } from '../operators/callbacks.js';
import type { Claim } from '../store/claims.js';
import type { Db } from '../store/db.js';
import * as tis from '../store/task-instances.js';
import { readVariable } from '../variables.js';
import type { HeldTries } from './held-tries.js';
import type { LogSink } from './log-sink.js';
import type { ResultStore } from './result-store.js';

/** Run callbacks are task instances named @onRunSuccess / @onRunFailure ('@' is never part of a task id). */
export function runCallbackEvent(taskId: string): RunCallbackEvent | null {
  return RUN_CALLBACK_EVENTS.find((e) => taskId === `@${e}`) ?? null;
}

export class RunCallbacks {
  constructor(
    private readonly db: Db,
    private readonly versions: VersionCache,
    private readonly held: HeldTries,
    private readonly results: ResultStore,
    private readonly s: { workerId: string; dagsFolder: string; callbackTimeoutMs?: number },
  ) {}

  /** Runs the callback of a claimed @<event> try and stores its outcome as the try's result. */
  async run(
    m: TaskMessage,
    token: string,
    abort: AbortController,
    claim: Claim,
    event: RunCallbackEvent,
    sink: LogSink,
    log: Logger,
  ): Promise<void> {
    const state = event === 'onRunSuccess' ? 'success' : 'failed';
    let error: string | null;
    try {
      const dag = await this.versions.get(claim.dagHash);
      const spec = dag.runCallbacks?.[event];
      if (!spec) throw new Error(`DAG version ${claim.dagHash} has no ${event} callback`);
      const failed = (await tis.listTaskInstances(this.db, m.runId)).filter(
        (t) => t.state === 'failed' || t.state === 'upstream_failed',
      );
      const runError =
        state === 'failed'
          ? `failed tasks: ${failed.map((t) => `${t.task_id} (${t.error ?? t.state})`).join(', ') || 'none'}`
          : null;
      sink.system(`${event} of run ${m.runId} on worker ${this.s.workerId}`);
      error = await runCallback({
        spec,
        key: functionKey(null, event),
        dag,
        dagsFolder: this.s.dagsFolder,
        event,
        state,
        error: runError,
        run: { ...claim, runId: m.runId, taskId: m.taskId, tryNumber: m.tryNumber, outputs: new Map() },
        forTask: false,
        log: sink,
        variable: this.variable,
        timeoutMs: this.s.callbackTimeoutMs,
        signal: AbortSignal.any([abort.signal, this.held.shutdown.signal]),
      });
    } catch (err) {
      error = (err as Error).message;
    }
    if (error) {
      sink.system(`callback failed: ${error} (the run's result stays ${state})`);
      log.warn({ event, err: error }, 'run callback failed');
    }
    await sink.flush();
    const { stored } = await this.results.store(
      m,
      token,
      {
        state: error ? 'failed' : 'success',
        exitCode: null,
        output: null,
        error,
        retryInMs: null,
        countsAsFailure: Boolean(error),
      },
      log,
      // Masks the callback's error as its log lines are (the sink's lines are all written by now).
      { sink },
    );
    this.held.running.delete(token);
    if (stored) log.info({ event, ok: !error }, 'run callback finished');
  }

  /** A variable's value, decrypted when it is secret (engine/variables.ts). */
  private readonly variable = (key: string) => readVariable(this.db, key);
}
