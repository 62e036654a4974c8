/**
 * The worker: takes task messages from its queues (prefetch = concurrency), claims each try with a
 * conditional update (stale and duplicate messages are acked and ignored), runs it, stores the result
 * fenced by the claim token, and acks only after that commit. Heartbeats keep its claims alive; a claim
 * found lost stops its task. stop() drains: no new work, running tasks get a grace period.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Broker, Delivery, Subscription } from '../broker/broker.js';
import { functionKey, RUN_CALLBACK_EVENTS } from '../dag/functions.js';
import type {
  RunCallbackEvent,
  SerializedDag,
  SerializedTask,
  TaskCallbackEvent,
} from '../../core/dag-model.js';
import { taskOf, VersionCache } from '../dag/versions.js';
import { backoffMs, sleep } from '../../core/backoff.js';
import type { TaskMessage } from '../../core/states.js';
import type { Logger } from '../../core/logger.js';
import { silentLogger } from '../../core/logger.js';
import { prefixedLog, runCallback } from '../operators/callbacks.js';
import { resolveOperator } from '../operators/registry.js';
import { TaskFailure, TaskLost, type RunInfo, type RunLauncher } from '../operators/types.js';
import { retryDelayMs } from '../scheduler/decide.js';
import { FREE_LOST_TRIES, lostTry } from '../lost-try.js';
import { isConnectionError, type Db, type Listener } from '../store/db.js';
import { publishOutbox } from '../publish-outbox.js';
import { endRunsIfOver, lockRunToAdvance, notifyRun } from '../store/run-progress.js';
import * as tis from '../store/task-instances.js';
import { queueTasks } from '../store/queueing.js';
import { Claim, ClaimRequest, claimTask, claimTasks } from '../store/claims.js';
import { ResultToStore, StoredResult, TryResult, finishTry, storeTryResults } from '../store/results.js';
import { orphanedClaims } from '../store/recovery.js';
import { OutboxRow } from '../store/outbox.js';
import { readVariable, secretValuesForMasking } from '../variables.js';
import * as workers from '../store/workers.js';
import type { GpuAllocator } from './gpus.js';
import { storableText, unstorableJson } from '../../core/storable.js';
import { LogSink } from './log-sink.js';
import type { LogLine } from '../store/logs.js';
import { storeRunLauncher } from './run-launcher.js';
import { judge, successorPlan } from './successors.js';
import { Batcher } from './batcher.js';
import { RunEndChecks } from './run-end-checks.js';

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

/** A committed success whose downstream tasks this worker judges (see advanceRuns). */
interface AdvanceRequest {
  runId: string;
  plan: { downstream: SerializedTask[]; read: string[] };
}

interface Advanced {
  /** Tasks it made ready, queued, with their messages not yet published. */
  outbox: OutboxRow[];
  /** Every downstream task had finished already: the run may be over. */
  mayEnd: boolean;
}

/** What a try's result is stored with: its DAG, task and claim (to start its successors), its log. */
interface StoreContext {
  dag?: SerializedDag;
  task?: SerializedTask;
  claim?: Claim;
  sink?: LogSink | null;
}

/** A try this worker holds a claim on. */
interface ClaimedTry {
  m: TaskMessage;
  token: string;
  claim: Claim;
}

interface Running {
  message: TaskMessage;
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
  /** Publishes of next tasks' messages still under way (see publishInBackground). */
  private readonly publishing = new Set<Promise<void>>();
  private readonly running = new Map<string, Running>();
  /** Tokens of claims in flight: known to the heartbeat, so it never takes them for orphans. */
  private readonly claiming = new Set<string>();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private claimsListener: Listener | null = null;
  private stopping = false;
  private stopped: Promise<void> | null = null;
  /** Values of secret variables, read once and again after a variable changes (see secretValues). */
  private masks: Promise<string[]> | null = null;
  /** The DAG version of recent runs: a task's upstream outputs then come with its claim. */
  private readonly runDags = new Map<string, string>();
  /** Claims, results and end-of-run checks of tasks ending together go to Postgres together. */
  private readonly claims: Batcher<ClaimRequest, Claim | null>;
  private readonly results: Batcher<ResultToStore, StoredResult>;
  private readonly endChecks: RunEndChecks;
  private readonly advances: Batcher<AdvanceRequest, Advanced>;

  constructor(private readonly o: WorkerOptions) {
    this.id = o.workerId ?? `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.log = (o.logger ?? silentLogger).child({ component: 'worker', workerId: this.id });
    this.versions = new VersionCache(o.db);
    this.launcher = storeRunLauncher(o.db, this.versions);
    this.claims = new Batcher((reqs) => claimTasks(o.db, this.id, reqs));
    this.results = new Batcher((items) => storeTryResults(o.db, items, o.db.channel('events'), this.id));
    // One judgement in flight: successes arriving meanwhile share the next one, instead of queueing on
    // the run's lock in Postgres.
    this.advances = new Batcher((items) => this.advanceRuns(items), { maxInFlight: 1, maxBatch: 256 });
    this.endChecks = new RunEndChecks((runIds) => this.endRunsIfOver(runIds), this.log);
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
    const variables = this.o.db.channel('variables');
    this.claimsListener = this.o.db.listen(
      [this.o.db.channel('claims'), variables],
      (ch, runId) => {
        if (ch === variables) this.masks = null;
        else if ([...this.running.values()].some((r) => r.message.runId === runId)) void this.heartbeat();
      },
      () => {
        // Changes to variables may have been missed while the connection was down.
        this.masks = null;
        void this.heartbeat();
      },
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
    let claim: Claim | null;
    this.claiming.add(token);
    try {
      claim = await this.claims.add({ m, token, upstream: this.knownUpstream(m), outboxId: null });
    } catch (err) {
      // The database is unreachable: give the message back a little later (an immediate requeue would spin).
      // The claim may still have committed with its answer lost: the heartbeat finds such an orphan.
      this.claiming.delete(token);
      this.log.warn({ ...ids, err: (err as Error).message }, 'claim failed; message released');
      await sleep(1000);
      return d.release();
    }
    if (claim) {
      this.running.set(token, { message: m, token, abort: new AbortController() });
      this.rememberRunDag(m.runId, claim.dagHash);
    }
    this.claiming.delete(token);
    if (!claim) {
      this.log.debug({ ...ids, redelivered: d.redelivered }, 'stale or duplicate message ignored');
      return d.ack();
    }
    // The delivery stands for one of this worker's slots: a downstream task this worker claims itself
    // (a "next" try, see storeOnce) runs in the same slot, and the delivery is acked when the slot frees.
    let acked = false;
    const settle = async () => {
      if (acked) return;
      acked = true;
      await d.ack();
    };
    let next: ClaimedTry | null = { m, token, claim };
    while (next) next = await this.runClaimed(next, settle);
    await settle();
  }

  /** Runs a claimed try and stores its result; returns the next try claimed in its slot, if any. */
  private async runClaimed(
    { m, token, claim }: ClaimedTry,
    settle: () => Promise<void>,
  ): Promise<ClaimedTry | null> {
    const ids = { runId: m.runId, taskId: m.taskId, try: m.tryNumber };
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
      await this.handleRunCallback(m, token, abort, claim, runEvent, callbackSink, log);
      return null;
    }
    let result: TryResult;
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
      task = taskOf(dag, m.taskId);
      if (!task) throw new TaskFailure(`task ${m.taskId} is not in DAG version ${claim.dagHash}`);
      const op = resolveOperator(task.operator);
      if (task.timeoutMs !== null) {
        const ms = task.timeoutMs;
        timers.push(setTimeout(() => abort.abort(`timed out after ${ms} ms`), ms));
      }
      // No "try N on worker W" line: `tasks logs` heads each try with it from the try's own record, which
      // spares a log row per task (a no-op task then writes no log at all).
      const upstream = task.upstream;
      const outputs =
        claim.outputs ??
        (await db('reading upstream outputs', () => tis.outputsOf(this.o.db, m.runId, upstream)));
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
    const { stored, next } = await this.store(m, token, result, log, { dag: dagVersion, task, claim, sink });
    this.running.delete(token);
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
    return next;
  }

  /**
   * A run callback: queued by the scheduler as a task instance named @<event> once the run has ended, so
   * that user code runs in a worker, never in the scheduler. Its try records the callback's own outcome;
   * the run's state is final already and nothing here can change it.
   */
  private async handleRunCallback(
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
    const { stored } = await this.store(
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
  }

  /** A variable's value, decrypted when it is secret (engine/variables.ts). */
  private readonly variable = (key: string) => readVariable(this.o.db, key);

  private failure(
    f: TaskFailure,
    task: SerializedTask | undefined,
    claim: Claim,
    signal: AbortSignal,
  ): TryResult {
    // Stopped by this worker's shutdown, or lost with its process host: not the task's fault, run it again
    // (a host lost every time, though, is the task's doing past a few tries).
    if ((signal.aborted && this.stopping) || (f instanceof TaskLost && claim.lostTries < FREE_LOST_TRIES))
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

  /**
   * Stores the result, retrying while the database is unreachable; false when fenced out. The sink's last
   * lines go with it; a success also queues the downstream tasks it makes ready (storeOnce).
   */
  private async store(
    m: TaskMessage,
    token: string,
    r: TryResult,
    log: Logger,
    of: StoreContext = {},
  ): Promise<{ stored: boolean; next: ClaimedTry | null }> {
    const logs = of.sink ? await of.sink.drain() : [];
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.storeOnce(m, token, r, logs, of, log);
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
        await sleep(backoffMs(attempt, 200));
      }
    }
  }

  /**
   * One attempt at storing a result (batched with others, see Batcher). A success whose downstream tasks
   * need no scheduler judgement (see successors.ts) starts them itself: those waiting for it alone in the
   * result's own statement ('direct'), the others after it under the run's lock (advanceRuns). The heaviest
   * of them on a queue this worker consumes is claimed to run next in the same slot, without a broker round
   * trip; the rest are published for any worker. Everything else is left to the schedulers, told through
   * the events channel.
   */
  private async storeOnce(
    m: TaskMessage,
    token: string,
    r: TryResult,
    logs: LogLine[],
    of: StoreContext,
    log: Logger,
  ): Promise<{ stored: boolean; next: ClaimedTry | null }> {
    const plan = r.state === 'success' && of.dag && of.task ? successorPlan(of.dag, of.task) : null;
    const direct = plan?.kind === 'direct' ? plan.downstream : [];
    const mine = this.stopping ? undefined : this.heaviestOfMine(direct, (t) => t);
    const nextToken = mine ? randomUUID() : null;
    if (nextToken) this.claiming.add(nextToken);
    try {
      // The schedulers hear of a result only when they must decide: a NOTIFY serialises commits in Postgres.
      const { stored, started } = await this.results.add({
        m,
        token,
        res: r,
        notify: !plan || plan.kind === 'scheduler',
        logs,
        successors: direct.map((t) => ({ taskId: t.taskId, token: t === mine ? nextToken : null })),
      });
      // A leaf's success matters to the schedulers only when it ends the run; so does a success whose
      // successors were not all waiting any more (already run, or the run was cancelled meanwhile).
      if (stored && (plan?.kind === 'leaf' || started.length < direct.length))
        this.endChecks.mayHaveEnded(m.runId);
      if (!stored) return { stored, next: null };
      if (plan?.kind === 'direct') {
        this.publishInBackground(
          started.flatMap((s) => (s.outbox ? [s.outbox] : [])),
          log,
        );
        const claimed = started.find((s) => s.token !== null);
        if (!claimed || !of.claim || !of.task) return { stored, next: null };
        const next: ClaimedTry = {
          m: { runId: m.runId, taskId: claimed.taskId, tryNumber: claimed.tryNumber },
          token: claimed.token!,
          claim: {
            ...of.claim,
            failedTries: claimed.failedTries,
            lostTries: claimed.lostTries,
            outputs: new Map([[of.task.taskId, claimed.upstreamOutput]]),
          },
        };
        this.running.set(next.token, { message: next.m, token: next.token, abort: new AbortController() });
        return { stored, next };
      }
      if (plan?.kind !== 'downstream') return { stored, next: null };
    } finally {
      if (nextToken) this.claiming.delete(nextToken);
    }
    const { outbox, mayEnd } = await this.advances.add({ runId: m.runId, plan });
    // Every downstream task had finished already (trigger rules such as one_success): this may be the end.
    if (mayEnd) this.endChecks.mayHaveEnded(m.runId);
    const row = this.heaviestOfMine(outbox, (x) => ({ queue: x.queue, priorityWeight: x.priority }));
    const next = row && !this.stopping ? await this.claimNext(row, log) : 'unclaimed';
    const rest = next === 'unclaimed' ? outbox : outbox.filter((x) => x !== row);
    this.publishInBackground(rest, log);
    return { stored: true, next: next === 'unclaimed' ? null : next };
  }

  /**
   * Publishes queued tasks' messages while the slot goes on to its next task: the messages are in the
   * outbox (committed with their tasks), so a worker that dies first loses nothing, the schedulers'
   * stale-outbox sweep sends them. Waiting cost every next task a publisher confirm and a delete.
   */
  private publishInBackground(rows: OutboxRow[], log: Logger) {
    if (rows.length === 0) return;
    const p = publishOutbox(this.o.broker, this.o.db, rows, log).finally(() => this.publishing.delete(p));
    this.publishing.add(p);
  }

  /** The heaviest of some tasks (or their messages) that is on a queue this worker consumes. */
  private heaviestOfMine<T>(
    xs: readonly T[],
    of: (x: T) => { queue: string; priorityWeight: number },
  ): T | undefined {
    let best: T | undefined;
    for (const x of xs) {
      const { queue, priorityWeight } = of(x);
      if (!this.o.queues.includes(queue) && !this.o.queues.includes('*')) continue;
      if (best === undefined || priorityWeight > of(best).priorityWeight) best = x;
    }
    return best;
  }

  /**
   * Claims a task this worker has just queued, removing its unsent message. Null when the task can no
   * longer run (its run was cancelled meanwhile); 'unclaimed' when the database did not answer, and the
   * message must be published after all.
   */
  private async claimNext(row: OutboxRow, log: Logger): Promise<ClaimedTry | null | 'unclaimed'> {
    const m = row.payload;
    const token = randomUUID();
    this.claiming.add(token);
    try {
      const claim = await claimTask(this.o.db, m, this.id, token, this.knownUpstream(m), row.id);
      if (!claim) return null;
      this.running.set(token, { message: m, token, abort: new AbortController() });
      this.rememberRunDag(m.runId, claim.dagHash);
      return { m, token, claim };
    } catch (err) {
      // Not claimed here: its message goes out as usual, so any worker can take it.
      log.warn({ err: (err as Error).message, taskId: m.taskId }, 'claiming the next task failed');
      return 'unclaimed';
    } finally {
      this.claiming.delete(token);
    }
  }

  /**
   * Queues the downstream tasks that committed successes made ready, one transaction per run under the
   * run's lock: workers finishing tasks of one run judge one after the other, so the last sees every
   * result before it; this worker's successes that arrive while a judgement is in flight share the next
   * one. A failure leaves the step to the schedulers (their sweep also catches a worker that died between
   * its result and this).
   */
  private async advanceRuns(items: AdvanceRequest[]): Promise<Advanced[]> {
    const channel = this.o.db.channel('events');
    const out: Advanced[] = items.map(() => ({ outbox: [], mayEnd: false }));
    const byRun = new Map<string, number[]>();
    items.forEach((x, i) => {
      const list = byRun.get(x.runId);
      if (list) list.push(i);
      else byRun.set(x.runId, [i]);
    });
    for (const [runId, idx] of byRun) {
      try {
        await this.o.db.tx(async (c) => {
          if ((await lockRunToAdvance(c, runId)) !== 'running') return;
          const reads = [...new Set(idx.flatMap((i) => items[i]!.plan.read))];
          const states = await tis.statesOf(c, runId, reads);
          const judged = idx.map((i) => judge(items[i]!.plan.downstream, states));
          const ready = [...new Set(judged.flatMap((j) => j.queue))];
          const rows = await queueTasks(
            c,
            ready.map((taskId) => ({ runId, taskId, from: 'none' as const })),
          );
          if (judged.some((j) => j.scheduler)) await notifyRun(c, channel, runId);
          // Each queued task goes to the first success that made it ready (that one may run it next).
          const taken = new Set<number>();
          idx.forEach((i, k) => {
            const j = judged[k]!;
            const mine = rows.filter((r) => !taken.has(r.id) && j.queue.includes(r.payload.taskId));
            for (const r of mine) taken.add(r.id);
            out[i] = { outbox: mine, mayEnd: !j.scheduler && !j.unfinished };
          });
        });
      } catch (err) {
        this.log.warn(
          { runId, err: (err as Error).message },
          'queueing the next tasks failed; the schedulers will',
        );
        await notifyRun(this.o.db, channel, runId).catch(() => undefined);
        for (const i of idx) out[i] = { outbox: [], mayEnd: false };
      }
    }
    return out;
  }

  /** The upstream ids of a message's task when its run's DAG version is known here; null otherwise. */
  private knownUpstream(m: TaskMessage): string[] | null {
    const dag = this.knownDag(m.runId);
    const upstream = dag ? taskOf(dag, m.taskId)?.upstream : undefined;
    return upstream && upstream.length > 0 ? upstream : null;
  }

  /**
   * Ends those of the runs whose every task succeeded (a run whose DAG has a run-success callback, or whose
   * DAG version this worker does not hold, is left to the schedulers, as is any other run that is over).
   */
  private async endRunsIfOver(runIds: string[]) {
    const dags = new Map<string, SerializedDag>();
    for (const runId of runIds) {
      const dag = this.knownDag(runId);
      if (dag && !dag.runCallbacks?.onRunSuccess) dags.set(runId, dag);
    }
    const ended = await endRunsIfOver(this.o.db, this.o.db.channel('events'), runIds, [...dags.keys()]);
    for (const runId of ended)
      this.log.info({ dagId: dags.get(runId)?.dagId, runId, state: 'success' }, 'run finished');
  }

  /** The DAG version of a recent run, when this worker holds it already (no read). */
  private knownDag(runId: string): SerializedDag | undefined {
    const hash = this.runDags.get(runId);
    return hash ? this.versions.peek(hash) : undefined;
  }

  private rememberRunDag(runId: string, hash: string) {
    if (this.runDags.has(runId)) return;
    if (this.runDags.size >= 1000) this.runDags.delete(this.runDags.keys().next().value!);
    this.runDags.set(runId, hash);
  }

  /**
   * The values of secret variables, to mask in the task's log; secrets this worker cannot decrypt mask
   * nothing. Read once and kept until a variable changes (a trigger NOTIFYs, migration 0007) or the
   * notification connection was lost.
   */
  private secretValues(): Promise<string[]> {
    if (!this.masks) {
      const p = secretValuesForMasking(this.o.db);
      this.masks = p;
      p.catch(() => {
        if (this.masks === p) this.masks = null;
      });
    }
    return this.masks;
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
        await sleep(backoffMs(attempt, 200));
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
    for (const o of await orphanedClaims(this.o.db, this.id, known)) {
      const ok = await finishTry(
        this.o.db,
        o,
        o.token,
        lostTry(`worker ${this.id} lost the answer to its claim (database connection lost); run again`),
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
      await this.endChecks.flush();
      await Promise.allSettled([...this.publishing]);
      if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
      await this.claimsListener?.close();
      await workers.stopWorker(this.o.db, this.id).catch(() => undefined);
      this.log.info('worker stopped');
    })();
    return this.stopped;
  }
}

/** The task callback a try's result calls for (none for a try lost with its worker or to a shutdown). */
function taskCallbackEvent(r: TryResult): TaskCallbackEvent | null {
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
