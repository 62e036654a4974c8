/**
 * The worker: takes task messages from its queues (a few more than its slots, see Intake), claims each
 * try with a conditional update (stale and duplicate messages are acked and ignored), runs it, stores the result
 * fenced by the claim token, and acks only after that commit. Heartbeats keep its claims alive; a claim
 * found lost stops its task. stop() drains: no new work, running tasks get a grace period.
 *
 * This class only puts the pieces together. The path of a task: Intake (claim) -> TryRunner (run) ->
 * ResultStore (store; start successors with RunAdvance and NextTries) -> RunEndChecks (end the run);
 * Liveness keeps the claims alive.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { EngineEventStream } from '../../core/events.js';
import type { Logger } from '../../core/logger.js';
import { silentLogger } from '../../core/logger.js';
import type { Broker, Subscription } from '../broker/broker.js';
import { VersionCache } from '../dag/versions.js';
import { prepareProcessHost } from '../operators/process-host.js';
import { taskUser } from '../operators/task-user.js';
import { DEFAULT_OUTPUT_CAP_BYTES } from '../execute-try.js';
import type { Db } from '../store/db.js';
import * as workers from '../store/workers.js';
import { GpuRecords } from './gpu-records.js';
import type { GpuAllocator } from './gpus.js';
import { limitOldGenerationGrowth } from './heap-growth.js';
import { HeldTries } from './held-tries.js';
import { Intake } from './intake.js';
import { Liveness } from './liveness.js';
import { NextTries } from './next-tries.js';
import { ResultStore } from './result-store.js';
import { RunAdvance } from './run-advance.js';
import { RunCallbacks } from './run-callbacks.js';
import { RunDags } from './run-dags.js';
import { RunEndChecks } from './run-end-checks.js';
import { endSucceededRuns } from './run-ends.js';
import { storeRunLauncher } from './run-launcher.js';
import { SecretMasks } from './secret-masks.js';
import { TurnStatements } from './turn-statements.js';
import { TryRunner } from './try-runner.js';

export interface WorkerOptions {
  db: Db;
  broker: Broker;
  logger?: Logger;
  queues: string[];
  concurrency: number;
  /** How long a prefetched message may wait for a free slot before it goes back to the queue (1 s). */
  prefetchHoldMs?: number;
  dagsFolder: string;
  workerId?: string;
  heartbeatMs?: number;
  /** How long running tasks may take to finish after stop() before they are stopped. */
  graceMs?: number;
  logCapBytes?: number;
  outputCapBytes?: number;
  /** This worker's GPUs, lent to tasks that ask for them device by device (one allocator per process). */
  gpus?: GpuAllocator;
  /** How long a callback may run before it is stopped (default 5 minutes). */
  callbackTimeoutMs?: number;
  /**
   * How long the main thread's event loop may be stuck before the heartbeat thread kills the process
   * (default 5 minutes): a stuck worker would otherwise heartbeat for ever while storing nothing.
   */
  mainStallKillMs?: number;
  /** Where this worker tells what it did (core/events.ts); a private stream by default. */
  events?: EngineEventStream;
}

export class Worker {
  readonly id: string;
  readonly events: EngineEventStream;
  private readonly log: Logger;
  private readonly held = new HeldTries();
  private readonly intake: Intake;
  private readonly next: NextTries;
  private readonly endChecks: RunEndChecks;
  private readonly liveness: Liveness;
  private readonly gpuRecords: GpuRecords;
  private subscription: Subscription | null = null;
  private stopped: Promise<void> | null = null;

  constructor(private readonly o: WorkerOptions) {
    this.id = o.workerId ?? `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.log = (o.logger ?? silentLogger).child({ component: 'worker', workerId: this.id });
    const events = (this.events = o.events ?? new EngineEventStream(this.log));
    const { id, log, held } = this;
    const db = o.db;
    const versions = new VersionCache(db);
    const runDags = new RunDags(versions);
    const masks = new SecretMasks(db);
    this.next = new NextTries(db, o.broker, id, o.queues, held, runDags, this.log);
    this.endChecks = new RunEndChecks((runIds) => endSucceededRuns(db, runDags, runIds, log, events), log);
    const turn = new TurnStatements(db, id);
    const results = new ResultStore(db, id, turn, held, this.next, new RunAdvance(db, log), this.endChecks);
    const settings = {
      workerId: id,
      dagsFolder: o.dagsFolder,
      gpus: o.gpus,
      logCapBytes: o.logCapBytes ?? 10 * 1024 * 1024,
      outputCapBytes: o.outputCapBytes ?? DEFAULT_OUTPUT_CAP_BYTES,
      callbackTimeoutMs: o.callbackTimeoutMs,
      events,
    };
    const runCallbacks = new RunCallbacks(db, versions, held, results, settings);
    const launcher = storeRunLauncher(db, versions);
    const tries = new TryRunner(db, versions, launcher, held, masks, results, runCallbacks, settings, log);
    this.intake = new Intake(turn, held, runDags, tries, log, {
      slots: o.concurrency,
      holdMs: o.prefetchHoldMs ?? 1000,
    });
    this.liveness = new Liveness(db, id, held, masks, log);
    this.gpuRecords = new GpuRecords(db, id, log);
  }

  async start(): Promise<void> {
    limitOldGenerationGrowth();
    // The host starts while the worker connects: the first task does not wait for it (its first DAG-file
    // function does start a thread).
    prepareProcessHost(taskUser());
    await workers.registerWorker(this.o.db, {
      workerId: this.id,
      hostname: os.hostname(),
      pid: process.pid,
      queues: this.o.queues,
      concurrency: this.o.concurrency,
      gpus: this.o.gpus?.info,
    });
    this.gpuRecords.start(this.o.gpus);
    this.events.emit('worker.up', () => ({
      ...this.who(),
      concurrency: this.o.concurrency,
      gpus: [...(this.o.gpus?.info ?? [])],
      at: new Date(),
    }));
    await this.liveness.start({
      heartbeatMs: this.o.heartbeatMs ?? 2000,
      mainStallKillMs: this.o.mainStallKillMs ?? 5 * 60_000,
    });
    this.subscription = await this.o.broker.subscribe(
      this.o.queues,
      Intake.prefetch(this.o.concurrency),
      (d) => this.intake.accept(d),
    );
    const subscription = this.subscription;
    this.intake.prefetchTo = (n) =>
      void subscription
        .setPrefetch(n)
        .catch((err: Error) => this.log.warn({ err: err.message }, 'prefetch change failed'));
    this.log.info(
      { queues: this.o.queues, concurrency: this.o.concurrency, broker: this.o.broker.kind },
      'worker started',
    );
  }

  private who() {
    return { workerId: this.id, hostname: os.hostname(), queues: this.o.queues };
  }

  get busy(): number {
    return this.held.running.size;
  }

  /** Drains: stops intake, lets running tasks finish within the grace period, then stops them. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.held.draining = true;
      this.log.info({ running: this.held.running.size }, 'worker stopping');
      await this.subscription?.cancel().catch(() => undefined);
      this.intake.releaseWaiting();
      let graceTimer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        Promise.allSettled([...this.intake.inflight]).then(() => false),
        new Promise<boolean>((r) => (graceTimer = setTimeout(() => r(true), this.o.graceMs ?? 30_000))),
      ]);
      clearTimeout(graceTimer);
      if (late) {
        this.held.shutdown.abort('worker shutting down');
        for (const r of this.held.running.values()) r.abort.abort('worker shutting down');
        await Promise.allSettled([...this.intake.inflight]);
      }
      await this.endChecks.flush();
      await this.next.published();
      await this.gpuRecords.stop();
      await this.liveness.stop();
      const down = await workers.stopWorker(this.o.db, this.id).then(
        () => true,
        () => false,
      );
      if (down) this.events.emit('worker.down', () => ({ ...this.who(), at: new Date() }));
      this.log.info('worker stopped');
    })();
    return this.stopped;
  }
}
