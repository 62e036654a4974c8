/**
 * The worker: takes task messages from its queues (prefetch = concurrency), claims each try with a
 * conditional update (stale and duplicate messages are acked and ignored), runs it, stores the result
 * fenced by the claim token, and acks only after that commit. Heartbeats keep its claims alive; a claim
 * found lost stops its task. stop() drains: no new work, running tasks get a grace period.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Broker, Delivery, Subscription } from '../broker/broker.js';
import { functionKey, RUN_CALLBACK_EVENTS } from '../dag/builder.js';
import type { RunCallbackEvent, SerializedDag, SerializedTask, TaskCallbackEvent } from '../dag/types.js';
import { VersionCache } from '../dag/versions.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { prefixedLog, runCallback } from '../operators/callbacks.js';
import { resolveOperator } from '../operators/registry.js';
import { TaskFailure, type RunInfo, type RunLauncher } from '../operators/types.js';
import { retryDelayMs } from '../scheduler/decide.js';
import { isConnectionError, type Db, type Listener } from '../store/db.js';
import * as tis from '../store/task-instances.js';
import { readVariable, secretValuesForMasking } from '../variables.js';
import * as workers from '../store/workers.js';
import type { GpuAllocator } from './gpus.js';
import { storableText, unstorableJson } from '../storable.js';
import { LogSink } from './log-sink.js';
import { storeRunLauncher } from './run-launcher.js';

export interface WorkerOptions {
  db: Db;
  broker: Broker;
  logger?: Logger;
  queues: string[];
  concurrency: number;
  dagsFolder: string;
  workerId?: string;
  heartbeatMs?: number;
  /** How long running tasks may take to finish after stop() before they are stopped. */
  graceMs?: number;
  logCapBytes?: number;
  outputCapBytes?: number;
  /** This worker's GPUs, handed to container tasks device by device (one allocator per process). */
  gpus?: GpuAllocator;
  /** How long a callback may run before it is stopped (default 5 minutes). */
  callbackTimeoutMs?: number;
}

interface Running {
  message: tis.TaskMessage;
  token: string;
  abort: AbortController;
}

export class Worker {
  readonly id: string;
  private readonly log: Logger;
  private readonly versions: VersionCache;
  private readonly launcher: RunLauncher;
  /** Aborted when stop() runs out of grace: stops callbacks still running. */
  private readonly shutdown = new AbortController();
  private subscription: Subscription | null = null;
  private readonly inflight = new Set<Promise<void>>();
  private readonly running = new Map<string, Running>();
  /** Tokens of claims in flight: known to the heartbeat, so it never takes them for orphans. */
  private readonly claiming = new Set<string>();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private claimsListener: Listener | null = null;
  private stopping = false;
  private stopped: Promise<void> | null = null;

  constructor(private readonly o: WorkerOptions) {
    this.id = o.workerId ?? `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.log = (o.logger ?? silentLogger).child({ component: 'worker', workerId: this.id });
    this.versions = new VersionCache(o.db);
    this.launcher = storeRunLauncher(o.db, this.versions);
  }

  async start(): Promise<void> {
    await workers.registerWorker(this.o.db, {
      workerId: this.id,
      hostname: os.hostname(),
      pid: process.pid,
      queues: this.o.queues,
      concurrency: this.o.concurrency,
    });
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.o.heartbeatMs ?? 2000);
    // A cancelled or timed-out run announces itself here, so its tasks stop now rather than at the next
    // heartbeat (which remains the fallback if a notification is missed).
    this.claimsListener = this.o.db.listen(
      [this.o.db.channel('claims')],
      (_ch, runId) => {
        if ([...this.running.values()].some((r) => r.message.runId === runId)) void this.heartbeat();
      },
      () => void this.heartbeat(),
    );
    await this.claimsListener.ready;
    this.subscription = await this.o.broker.subscribe(this.o.queues, this.o.concurrency, (d) =>
      this.accept(d),
    );
    this.log.info(
      { queues: this.o.queues, concurrency: this.o.concurrency, broker: this.o.broker.kind },
      'worker started',
    );
  }

  private accept(d: Delivery) {
    const p = this.handle(d).catch((err) =>
      this.log.error({ err: (err as Error).message }, 'task handling failed'),
    );
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private async handle(d: Delivery): Promise<void> {
    const m = d.body;
    const ids = { runId: m.runId, taskId: m.taskId, try: m.tryNumber };
    if (this.stopping) return d.release();
    const token = randomUUID();
    let claim: tis.Claim | null;
    this.claiming.add(token);
    try {
      claim = await tis.claimTask(this.o.db, m, this.id, token);
    } catch (err) {
      // The database is unreachable: give the message back a little later (an immediate requeue would spin).
      // The claim may still have committed with its answer lost: the heartbeat finds such an orphan.
      this.claiming.delete(token);
      this.log.warn({ ...ids, err: (err as Error).message }, 'claim failed; message released');
      await sleep(1000);
      return d.release();
    }
    if (claim) this.running.set(token, { message: m, token, abort: new AbortController() });
    this.claiming.delete(token);
    if (!claim) {
      this.log.debug({ ...ids, redelivered: d.redelivered }, 'stale or duplicate message ignored');
      return d.ack();
    }
    const abort = this.running.get(token)!.abort;
    const log = this.log.child({ dagId: claim.dagId, ...ids });
    // Database reads before the task starts wait out a lost connection: that is not the task's failure.
    const db = <T>(what: string, fn: () => Promise<T>) => this.untilDbAnswers(what, fn, abort.signal, log);
    const runEvent = runCallbackEvent(m.taskId);
    if (runEvent) {
      const callbackSink = new LogSink(
        this.o.db,
        { runId: m.runId, taskId: m.taskId, tryNumber: m.tryNumber },
        {
          capBytes: this.o.logCapBytes ?? 10 * 1024 * 1024,
          mask: await db('reading secrets', () => this.secretValues()),
        },
      );
      return this.handleRunCallback(d, m, token, abort, claim, runEvent, callbackSink, log);
    }
    let result: tis.TryResult;
    let task: SerializedTask | undefined;
    let dagVersion: SerializedDag | undefined;
    let runInfo: RunInfo | undefined;
    const timers: NodeJS.Timeout[] = [];
    let sink: LogSink | null = null;
    try {
      // No masks, no run: a task must never log a secret unmasked because the database blinked.
      const mask = await db('reading secrets', () => this.secretValues());
      sink = new LogSink(
        this.o.db,
        { runId: m.runId, taskId: m.taskId, tryNumber: m.tryNumber },
        { capBytes: this.o.logCapBytes ?? 10 * 1024 * 1024, mask },
      );
      log.info('task started');
      const dag = await db('reading the DAG version', () => this.versions.get(claim.dagHash));
      task = dag.tasks.find((t) => t.taskId === m.taskId);
      if (!task) throw new TaskFailure(`task ${m.taskId} is not in DAG version ${claim.dagHash}`);
      const op = resolveOperator(task.operator);
      if (task.timeoutMs !== null) {
        const ms = task.timeoutMs;
        timers.push(setTimeout(() => abort.abort(`timed out after ${ms} ms`), ms));
      }
      sink.system(`try ${m.tryNumber} on worker ${this.id}`);
      const upstream = task.upstream;
      const outputs = await db('reading upstream outputs', () => tis.outputsOf(this.o.db, m.runId, upstream));
      dagVersion = dag;
      runInfo = { ...claim, runId: m.runId, taskId: m.taskId, tryNumber: m.tryNumber, outputs };
      const r = await op.execute({
        dag,
        task,
        run: runInfo,
        log: sink,
        signal: abort.signal,
        dagsFolder: this.o.dagsFolder,
        gpus: this.o.gpus,
        variable: (key) => db(`reading variable ${key}`, () => this.variable(key)),
        runs: this.launcher,
        workerId: this.id,
      });
      checkOutputSize(r.output, this.o.outputCapBytes ?? 256 * 1024);
      result = {
        state: 'success',
        exitCode: r.exitCode ?? null,
        output: r.output,
        error: null,
        retryInMs: null,
        countsAsFailure: false,
      };
    } catch (err) {
      const failure =
        err instanceof TaskFailure ? err : new TaskFailure((err as Error).message ?? String(err));
      sink?.system(`failed: ${failure.message}`);
      result = this.failure(failure, task, claim, abort.signal);
      if (result.error) result.error = storableText(result.error);
    } finally {
      for (const t of timers) clearTimeout(t);
    }
    await sink?.flush();
    const stored = await this.store(m, token, result, log);
    this.running.delete(token);
    if (stored) log.info({ state: result.state, error: result.error ?? undefined }, 'task finished');
    else log.warn('claim was lost while the task ran; result discarded (a newer try owns the task)');
    await d.ack();
    // After the result is stored (and acked): a callback can neither change nor delay the task's result.
    const event = taskCallbackEvent(result);
    const spec = event ? task?.callbacks?.[event] : undefined;
    if (stored && event && spec && task && dagVersion && runInfo && sink) {
      const error = await runCallback({
        spec,
        key: functionKey(task.taskId, event),
        dag: dagVersion,
        dagsFolder: this.o.dagsFolder,
        event,
        state: result.state,
        error: result.error,
        run: runInfo,
        forTask: true,
        log: prefixedLog(sink, event),
        variable: this.variable,
        timeoutMs: this.o.callbackTimeoutMs,
        signal: this.shutdown.signal,
      });
      if (error) {
        sink.system(`[${event}] callback failed: ${error} (the task's result stays ${result.state})`);
        log.warn({ event, err: error }, 'task callback failed');
      } else log.debug({ event }, 'task callback done');
      await sink.flush();
    }
  }

  /**
   * A run callback: queued by the scheduler as a task instance named @<event> once the run has ended, so
   * that user code runs in a worker, never in the scheduler. Its try records the callback's own outcome;
   * the run's state is final already and nothing here can change it.
   */
  private async handleRunCallback(
    d: Delivery,
    m: tis.TaskMessage,
    token: string,
    abort: AbortController,
    claim: tis.Claim,
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
      const failed = (await tis.listTaskInstances(this.o.db, m.runId)).filter(
        (t) => t.state === 'failed' || t.state === 'upstream_failed',
      );
      const runError =
        state === 'failed'
          ? `failed tasks: ${failed.map((t) => `${t.task_id} (${t.error ?? t.state})`).join(', ') || 'none'}`
          : null;
      sink.system(`${event} of run ${m.runId} on worker ${this.id}`);
      error = await runCallback({
        spec,
        key: functionKey(null, event),
        dag,
        dagsFolder: this.o.dagsFolder,
        event,
        state,
        error: runError,
        run: { ...claim, runId: m.runId, taskId: m.taskId, tryNumber: m.tryNumber, outputs: new Map() },
        forTask: false,
        log: sink,
        variable: this.variable,
        timeoutMs: this.o.callbackTimeoutMs,
        signal: AbortSignal.any([abort.signal, this.shutdown.signal]),
      });
    } catch (err) {
      error = (err as Error).message;
    }
    if (error) {
      sink.system(`callback failed: ${error} (the run's result stays ${state})`);
      log.warn({ event, err: error }, 'run callback failed');
    }
    await sink.flush();
    const stored = await this.store(
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
    );
    this.running.delete(token);
    if (stored) log.info({ event, ok: !error }, 'run callback finished');
    await d.ack();
  }

  /** A variable's value, decrypted when it is secret (engine/variables.ts). */
  private readonly variable = (key: string) => readVariable(this.o.db, key);

  private failure(
    f: TaskFailure,
    task: SerializedTask | undefined,
    claim: tis.Claim,
    signal: AbortSignal,
  ): tis.TryResult {
    const base = { exitCode: f.exitCode, output: null, error: f.message };
    // Stopped by this worker's shutdown: not the task's fault, run it again elsewhere.
    if (signal.aborted && this.stopping) {
      return { ...base, state: 'up_for_retry', retryInMs: 0, countsAsFailure: false, lost: true };
    }
    const retryIn = task ? retryDelayMs(task, claim.failedTries) : null;
    return {
      ...base,
      state: retryIn !== null ? 'up_for_retry' : 'failed',
      retryInMs: retryIn,
      countsAsFailure: true,
    };
  }

  /** Stores the result, retrying while the database is unreachable; false when fenced out. */
  private async store(m: tis.TaskMessage, token: string, r: tis.TryResult, log: Logger): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await tis.finishTry(this.o.db, m, token, r, this.o.db.channel('events'));
      } catch (err) {
        if (!isConnectionError(err) && r.state === 'success') {
          // The database refused the result itself: retrying would loop for ever. Record a failure.
          log.error({ err: (err as Error).message }, 'the result could not be stored; the try fails');
          r = {
            state: 'failed',
            exitCode: r.exitCode,
            output: null,
            error: storableText(`the task's result could not be stored: ${(err as Error).message}`),
            retryInMs: null,
            countsAsFailure: true,
          };
          continue;
        }
        log.warn({ err: (err as Error).message, attempt }, 'storing the result failed; retrying');
        await sleep(Math.min(5000, 200 * 2 ** Math.min(attempt, 5)));
      }
    }
  }

  /** The values of secret variables, to mask in the task's log; secrets this worker cannot decrypt mask nothing. */
  private async secretValues(): Promise<string[]> {
    return secretValuesForMasking(this.o.db);
  }

  /**
   * Runs a database step of a claimed try, retrying while the connection is lost; other errors and an
   * aborted try (claim lost, shutdown) end the wait.
   */
  private async untilDbAnswers<T>(
    what: string,
    fn: () => Promise<T>,
    signal: AbortSignal,
    log: Logger,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!isConnectionError(err) || signal.aborted) throw err;
        log.warn({ err: (err as Error).message, attempt }, `${what} failed: database unreachable; retrying`);
        await sleep(Math.min(5000, 200 * 2 ** Math.min(attempt, 5)));
      }
    }
  }

  private async heartbeat() {
    try {
      const known = [...this.running.keys(), ...this.claiming];
      await this.releaseOrphans(known);
      const lost = await workers.heartbeat(this.o.db, this.id, [...this.running.keys()]);
      for (const token of lost) {
        const r = this.running.get(token);
        if (!r || r.abort.signal.aborted) continue;
        const reason = await this.lostReason(r);
        this.log.warn({ runId: r.message.runId, taskId: r.message.taskId }, `${reason}; stopping task`);
        r.abort.abort(reason);
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'heartbeat failed');
    }
  }

  /** Why a claim is gone: the run was cancelled or timed out, or this worker was declared lost. */
  private async lostReason(r: Running): Promise<string> {
    const ti = await tis.getTaskInstance(this.o.db, r.message.runId, r.message.taskId).catch(() => undefined);
    if (ti?.state === 'cancelled' && ti.try_number === r.message.tryNumber) return ti.error ?? 'cancelled';
    return 'claim lost (declared dead?)';
  }

  /**
   * Claims this worker holds in the database without knowing (the claim committed, its answer was lost
   * with the connection, the message was released): give them back as lost tries, so they run again
   * instead of staying 'running' forever behind a live heartbeat.
   */
  private async releaseOrphans(known: string[]) {
    for (const o of await tis.orphanedClaims(this.o.db, this.id, known)) {
      const ok = await tis.finishTry(
        this.o.db,
        o,
        o.token,
        {
          state: 'up_for_retry',
          exitCode: null,
          output: null,
          error: `worker ${this.id} lost the answer to its claim (database connection lost); run again`,
          retryInMs: 0,
          countsAsFailure: false,
          lost: true,
        },
        this.o.db.channel('events'),
      );
      if (ok)
        this.log.warn({ runId: o.runId, taskId: o.taskId, try: o.tryNumber }, 'orphaned claim given back');
    }
  }

  get busy(): number {
    return this.running.size;
  }

  /** Drains: stops intake, lets running tasks finish within the grace period, then stops them. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.log.info({ running: this.running.size }, 'worker stopping');
      await this.subscription?.cancel().catch(() => undefined);
      let graceTimer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        Promise.allSettled([...this.inflight]).then(() => false),
        new Promise<boolean>((r) => (graceTimer = setTimeout(() => r(true), this.o.graceMs ?? 30_000))),
      ]);
      clearTimeout(graceTimer);
      if (late) {
        this.shutdown.abort('worker shutting down');
        for (const r of this.running.values()) r.abort.abort('worker shutting down');
        await Promise.allSettled([...this.inflight]);
      }
      if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
      await this.claimsListener?.close();
      await workers.stopWorker(this.o.db, this.id).catch(() => undefined);
      this.log.info('worker stopped');
    })();
    return this.stopped;
  }
}

/** The task callback a try's result calls for (none for a try lost with its worker or to a shutdown). */
function taskCallbackEvent(r: tis.TryResult): TaskCallbackEvent | null {
  if (r.state === 'success') return 'onSuccess';
  if (r.state === 'failed') return 'onFailure';
  return r.countsAsFailure ? 'onRetry' : null;
}

/** Run callbacks are task instances named @onRunSuccess / @onRunFailure ('@' is never part of a task id). */
function runCallbackEvent(taskId: string): RunCallbackEvent | null {
  return RUN_CALLBACK_EVENTS.find((e) => taskId === `@${e}`) ?? null;
}

function checkOutputSize(output: unknown, cap: number) {
  const json = JSON.stringify(output ?? null);
  if (json === undefined) throw new TaskFailure('the task returned a value that is not JSON-serialisable');
  const bad = unstorableJson(output);
  if (bad) throw new TaskFailure(`the task's output cannot be stored: the value at ${bad.at} ${bad.why}`);
  const bytes = Buffer.byteLength(json);
  if (bytes > cap) {
    throw new TaskFailure(
      `the task's output is ${bytes} bytes, over the cap of ${cap} bytes: store large data elsewhere and return a reference`,
    );
  }
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}
