/**
 * Runs a claimed try in a worker: its log (secrets masked), its DAG version and upstream outputs, the try
 * itself (executeTry, as `dags test` runs it), its result (ResultStore), then the task's callback. A try
 * of a run callback goes to RunCallbacks instead.
 */
import type { SerializedDag, SerializedTask, TaskCallbackEvent } from '../../core/dag-model.js';
import type { EngineEventStream } from '../../core/events.js';
import type { Logger } from '../../core/logger.js';
import type { TaskMessage } from '../../core/states.js';
import { storableText } from '../../core/storable.js';
import { functionKey } from '../dag/functions.js';
import { parseItemId, tryUpstream } from '../dag/mapped.js';
import { taskOf, type VersionCache } from '../dag/versions.js';
import { executeTry, tryFailure } from '../execute-try.js';
import { FREE_LOST_TRIES, lostTry } from '../lost-try.js';
import { prefixedLog, runCallback } from '../operators/callbacks.js';
import { TaskFailure, TaskLost, type RunInfo, type RunLauncher } from '../operators/types.js';
import { retryDelayMs } from '../scheduler/decide.js';
import type { Claim } from '../store/claims.js';
import type { Db } from '../store/db.js';
import { itemOf } from '../store/mapped-items.js';
import type { TryResult } from '../store/results.js';
import * as tis from '../store/task-instances.js';
import { readVariable } from '../variables.js';
import type { GpuAllocator } from './gpus.js';
import type { ClaimedTry, HeldTries } from './held-tries.js';
import { LogSink } from './log-sink.js';
import type { ResultStore } from './result-store.js';
import { runCallbackEvent, type RunCallbacks } from './run-callbacks.js';
import type { SecretMasks } from './secret-masks.js';
import { TryEvents } from './try-events.js';
import { untilDbAnswers } from './until-db-answers.js';

/** How a worker runs its tries (WorkerOptions, defaults applied). */
export interface TrySettings {
  workerId: string;
  dagsFolder: string;
  gpus?: GpuAllocator;
  logCapBytes: number;
  outputCapBytes: number;
  callbackTimeoutMs?: number;
  events: EngineEventStream;
}

export class TryRunner {
  constructor(
    private readonly db: Db,
    private readonly versions: VersionCache,
    private readonly launcher: RunLauncher,
    private readonly held: HeldTries,
    private readonly masks: SecretMasks,
    private readonly results: ResultStore,
    private readonly runCallbacks: RunCallbacks,
    private readonly s: TrySettings,
    private readonly log: Logger,
  ) {}

  /**
   * Runs a claimed try and stores its result; returns the next try claimed in its slot, if any. `preclaim`
   * is called when the result is about to be stored and the slot will have no next try of its own.
   */
  async run(
    { m, token, claim }: ClaimedTry,
    settle: () => Promise<void>,
    preclaim?: () => void,
  ): Promise<ClaimedTry | null> {
    const ids = { runId: m.runId, taskId: m.taskId, try: m.tryNumber };
    const abort = this.held.running.get(token)!.abort;
    const log = this.log.child({ dagId: claim.dagId, ...ids });
    // Database reads before the task starts wait out a lost connection: that is not the task's failure.
    const db = <T>(what: string, fn: () => Promise<T>) => untilDbAnswers(what, fn, abort.signal, log);
    const runEvent = runCallbackEvent(m.taskId);
    if (runEvent) {
      const callbackSink = this.sinkFor(m, await db('reading secrets', () => this.masks.values()));
      await this.runCallbacks.run(m, token, abort, claim, runEvent, callbackSink, log);
      return null;
    }
    let result: TryResult;
    let task: SerializedTask | undefined;
    let dagVersion: SerializedDag | undefined;
    let runInfo: RunInfo | undefined;
    let sink: LogSink | null = null;
    const events = new TryEvents(this.s.events, this.s.workerId, m, claim);
    try {
      // No masks, no run: a task must never log a secret unmasked because the database blinked.
      const mask = await db('reading secrets', () => this.masks.values());
      sink = this.sinkFor(m, mask);
      // No "try N on worker W" line: `tasks logs` heads each try with it from the try's own record, which
      // spares a log row per task (a no-op task then writes no log at all).
      log.info('task started');
      const dag = await db('reading the DAG version', () => this.versions.get(claim.dagHash));
      task = taskOf(dag, m.taskId);
      events.started(task?.queue ?? null);
      if (!task) throw new TaskFailure(`task ${m.taskId} is not in DAG version ${claim.dagHash}`);
      const item = parseItemId(m.taskId);
      const upstream = tryUpstream(task, item !== null);
      // A mapped upstream's output is its items' outputs, in item order (the claim never carries those).
      const mapped = upstream.filter((u) => taskOf(dag, u)?.map);
      const outputs =
        (mapped.length === 0 ? claim.outputs : null) ??
        (await db('reading upstream outputs', () => tis.outputsOf(this.db, m.runId, upstream, mapped)));
      dagVersion = dag;
      runInfo = { ...claim, runId: m.runId, taskId: m.taskId, tryNumber: m.tryNumber, outputs };
      if (item) {
        runInfo.mapIndex = item.index;
        runInfo.item = await db('reading the item', () => itemOf(this.db, m.runId, m.taskId));
      }
      const r = await executeTry(
        {
          dag,
          task,
          run: runInfo,
          log: sink,
          signal: abort.signal,
          dagsFolder: this.s.dagsFolder,
          gpus: this.s.gpus,
          variable: (key) => db(`reading variable ${key}`, () => this.variable(key)),
          runs: this.launcher,
          workerId: this.s.workerId,
        },
        abort,
        this.s.outputCapBytes,
      );
      result = {
        state: 'success',
        exitCode: r.exitCode ?? null,
        output: r.output,
        error: null,
        retryInMs: null,
        countsAsFailure: false,
      };
    } catch (err) {
      result = this.failure(tryFailure(err, sink), task, claim, abort.signal);
      if (result.error) result.error = storableText(result.error);
    }
    const { stored, next } = await this.results.store(m, token, result, log, {
      dag: dagVersion,
      task,
      claim,
      sink,
      preclaim,
    });
    this.held.running.delete(token);
    if (stored) events.ended(result);
    if (stored) log.info({ state: result.state, error: result.error ?? undefined }, 'task finished');
    else log.warn('claim was lost while the task ran; result discarded (a newer try owns the task)');
    if (!next) await settle();
    // After the result is stored (and acked): a callback can neither change nor delay the task's result.
    const event = taskCallbackEvent(result);
    const spec = event ? task?.callbacks?.[event] : undefined;
    if (stored && event && spec && task && dagVersion && runInfo && sink) {
      const error = await runCallback({
        spec,
        key: functionKey(task.taskId, event),
        dag: dagVersion,
        dagsFolder: this.s.dagsFolder,
        event,
        state: result.state,
        error: result.error,
        run: runInfo,
        forTask: true,
        log: prefixedLog(sink, event),
        variable: this.variable,
        timeoutMs: this.s.callbackTimeoutMs,
        signal: this.held.shutdown.signal,
      });
      if (error) {
        sink.system(`[${event}] callback failed: ${error} (the task's result stays ${result.state})`);
        log.warn({ event, err: error }, 'task callback failed');
      } else log.debug({ event }, 'task callback done');
      await sink.flush();
    }
    return next;
  }

  /** The try's log, in Postgres, with the values of secret variables masked. */
  private sinkFor(m: TaskMessage, mask: string[]): LogSink {
    return new LogSink(
      this.db,
      { runId: m.runId, taskId: m.taskId, tryNumber: m.tryNumber },
      { capBytes: this.s.logCapBytes, mask },
    );
  }

  /** A variable's value, decrypted when it is secret (engine/variables.ts). */
  private readonly variable = (key: string) => readVariable(this.db, key);

  private failure(
    f: TaskFailure,
    task: SerializedTask | undefined,
    claim: Claim,
    signal: AbortSignal,
  ): TryResult {
    // Stopped by this worker's shutdown, or lost with its process host: not the task's fault, run it again
    // (a host lost every time, though, is the task's doing past a few tries).
    if (
      (signal.aborted && this.held.draining) ||
      (f instanceof TaskLost && claim.lostTries < FREE_LOST_TRIES)
    )
      return lostTry(f.message, f.exitCode);
    const base = { exitCode: f.exitCode, output: null, error: f.message };
    const retryIn = task ? retryDelayMs(task, claim.failedTries) : null;
    return {
      ...base,
      state: retryIn !== null ? 'up_for_retry' : 'failed',
      retryInMs: retryIn,
      countsAsFailure: true,
    };
  }
}

/** The task callback a try's result calls for (none for a try lost with its worker or to a shutdown). */
function taskCallbackEvent(r: TryResult): TaskCallbackEvent | null {
  if (r.state === 'success') return 'onSuccess';
  if (r.state === 'failed') return 'onFailure';
  return r.countsAsFailure ? 'onRetry' : null;
}
