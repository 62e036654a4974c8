/**
 * The scheduler: starts queued runs, queues every task whose upstreams allow it, settles tasks that will
 * never run, ends finished runs, publishes the outbox, and declares tasks of dead workers lost.
 * Event-driven (LISTEN/NOTIFY from workers and triggers) with periodic sweeps as a safety net.
 * Several schedulers may run at once: each run is processed under a row lock taken with SKIP LOCKED.
 */
import { sleep } from '../../core/backoff.js';
import { DagProcessor } from '../dag/processor.js';
import { VersionCache } from '../dag/versions.js';
import type { Broker } from '../broker/broker.js';
import type { SerializedDag, SerializedTask } from '../../core/dag-model.js';
import type { Db, Listener } from '../store/db.js';
import type { Logger } from '../../core/logger.js';
import { silentLogger } from '../../core/logger.js';
import * as runs from '../store/runs.js';
import {
  anyQueuedRuns,
  filterRunning,
  finishRuns,
  lockRunningRuns,
  lockStartableRuns,
  markRunning,
  runningRunIds,
  runsWithDueRetries,
  timedOutRuns,
  withCappedSiblings,
} from '../store/run-passes.js';
import * as tis from '../store/task-instances.js';
import { QueueRequest, lockTaskSlots, queueRunCallback, queueTasks, settleUnrun } from '../store/queueing.js';
import { TryResult, finishTry } from '../store/results.js';
import { findStaleQueued, findZombies, requeueStale } from '../store/recovery.js';
import { refreshStatisticsAfterGrowth } from '../store/statistics.js';
import { OutboxRow } from '../store/outbox.js';
import { anyStaleOutbox, deleteOutbox, lockStaleOutbox } from '../store/outbox.js';
import { publishOutbox } from '../publish-outbox.js';
import { lockPoolSlots } from '../store/pools.js';
import { BRANCH_OPERATOR } from '../dag/branch.js';
import { stopRun } from '../store/run-control.js';
import { decide, retryDelayMs, type TaskStateBrief } from './decide.js';
import { FREE_LOST_TRIES, lostTry } from '../lost-try.js';
import { createScheduledRuns } from './scheduled-runs.js';

export interface SchedulerOptions {
  db: Db;
  broker: Broker;
  logger?: Logger;
  /** Folder of DAG files to keep in sync; null when another process does it. */
  dagsFolder: string | null;
  /**
   * Full scans of the dags folder, a safety net behind watching it (default 30 s); where the folder cannot
   * be watched, the scan is all there is and runs at least every 2 s.
   */
  dagScanIntervalMs?: number;
  /** Full sweep of all active runs, in case a notification was missed. */
  sweepIntervalMs?: number;
  /** A running task whose worker has not heartbeated for this long is lost. */
  zombieThresholdMs?: number;
  /** Tries lost with their worker that are re-run without counting against the task's retries. */
  maxLostTries?: number;
  /** Outbox rows older than this are taken to be left by a dead publisher. */
  outboxStaleMs?: number;
  /**
   * A queued try unclaimed for this long, with no outbox row and an empty broker queue, lost its message
   * (purged queue, broker failure): it is sent again. Default 60 s.
   */
  requeueAfterMs?: number;
  pausedOnCreation?: boolean;
  parseTimeoutMs?: number;
  /** How often due scheduled runs are looked for. */
  scheduleIntervalMs?: number;
  /** The time schedules are computed against (tests pass a fixed clock). */
  clock?: () => Date;
  /** How often runs are checked against their DAG's runTimeout. */
  runTimeoutCheckMs?: number;
}

const RUNS_PER_TICK = 200;
/** Passes that read fewer task rows follow each other at once (small runs keep their latency). */
const PACING_MIN_ROWS = 2000;

export class Scheduler {
  private readonly log: Logger;
  private readonly versions: VersionCache;
  private readonly processor: DagProcessor | null;
  private listener: Listener | null = null;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly dirty = new Set<string>();
  private fullSweep = true;
  private ticking: Promise<void> | null = null;
  private tickAgain = false;
  /** Task rows the current pass has read (see loop). */
  private rowsRead = 0;
  private stopping = false;
  private stopped: Promise<void> | null = null;
  private scanning = false;
  /** A change was seen while a scan ran: scan again when it ends. */
  private scanAgain = false;
  private unwatch: (() => void) | null = null;
  private scheduling = false;
  private readonly warned = new Map<string, number>();
  /**
   * The last full sweep found no running run, and nothing started since: the per-second checks of running
   * runs (due retries, run timeouts) have nothing to find. Any event about a run clears it; a run another
   * scheduler started is found by the next sweep (every few seconds), and that scheduler checks it meanwhile.
   */
  private noRunningRuns = false;
  /** Task instances this scheduler created since it last refreshed the planner's statistics. */
  private createdSinceAnalyze = 0;

  constructor(private readonly o: SchedulerOptions) {
    this.log = (o.logger ?? silentLogger).child({ component: 'scheduler' });
    this.versions = new VersionCache(o.db);
    this.processor = o.dagsFolder
      ? new DagProcessor(o.db, o.dagsFolder, {
          logger: this.log,
          pausedOnCreation: o.pausedOnCreation,
          parseTimeoutMs: o.parseTimeoutMs,
        })
      : null;
  }

  async start(): Promise<void> {
    this.listener = this.o.db.listen(
      [this.o.db.channel('events')],
      (_ch, payload) => {
        if (payload.startsWith('run:')) return;
        if (payload.startsWith('pool:')) {
          // A pool was created or resized: tasks of any run may be waiting for its slots.
          this.fullSweep = true;
          this.wake();
          return;
        }
        if (payload.startsWith('dag:')) {
          // A DAG was paused or unpaused: its queued runs may start, its schedule may be due.
          void this.scheduleRuns();
          this.wake();
          return;
        }
        this.dirty.add(payload);
        this.noRunningRuns = false;
        this.wake();
      },
      () => {
        this.fullSweep = true;
        this.wake();
      },
    );
    await this.listener.ready;
    if (this.processor) {
      this.unwatch = this.processor.watch(() => void this.scanDags());
      await this.scanDags();
    }
    await this.scheduleRuns();
    const every = (ms: number, fn: () => void) => this.timers.push(setInterval(fn, ms));
    every(this.o.sweepIntervalMs ?? 5000, () => {
      this.fullSweep = true;
      this.wake();
    });
    every(1000, () => void this.checkDueRetries());
    every(this.o.scheduleIntervalMs ?? 1000, () => void this.scheduleRuns());
    every(this.o.runTimeoutCheckMs ?? 1000, () => void this.failTimedOutRuns());
    every(Math.max(250, (this.o.zombieThresholdMs ?? 30_000) / 4), () => void this.reapZombies());
    every(Math.max(250, (this.o.outboxStaleMs ?? 5000) / 2), () => void this.republishStaleOutbox());
    every(Math.max(250, (this.o.requeueAfterMs ?? 60_000) / 2), () => void this.requeueLostMessages());
    if (this.processor) {
      const interval = this.o.dagScanIntervalMs ?? 30_000;
      if (!this.unwatch)
        this.log.warn('the dags folder cannot be watched: changes are seen by scanning it every 2 s at most');
      every(this.unwatch ? interval : Math.min(interval, 2000), () => void this.scanDags());
    }
    this.log.info({ dagsFolder: this.o.dagsFolder, broker: this.o.broker.kind }, 'scheduler started');
    this.wake();
  }

  /** Re-reads the dags folder now (also called on a timer). */
  async scanDags(force = false) {
    if (!this.processor || this.stopping) return;
    if (this.scanning) {
      this.scanAgain = true;
      return;
    }
    this.scanning = true;
    try {
      await this.processor.sync(force);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'DAG folder scan failed');
    } finally {
      this.scanning = false;
      if (this.scanAgain) {
        this.scanAgain = false;
        void this.scanDags();
      }
    }
  }

  private wake() {
    if (this.stopping) return;
    if (this.ticking) {
      this.tickAgain = true;
      return;
    }
    this.ticking = this.loop().finally(() => (this.ticking = null));
  }

  private async loop() {
    do {
      this.tickAgain = false;
      this.rowsRead = 0;
      const t0 = performance.now();
      try {
        await this.tick();
        // A pass over a large run reads all its tasks: with results streaming in, back-to-back passes
        // would keep a core busy. Waiting as long as the pass took batches what arrives meanwhile.
        if (this.tickAgain && this.rowsRead > PACING_MIN_ROWS)
          await sleep(Math.min(performance.now() - t0, 250));
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'scheduling pass failed; retrying');
        this.fullSweep = true;
        await sleep(500);
        this.tickAgain = !this.stopping;
      }
    } while (this.tickAgain && !this.stopping);
  }

  /** One scheduling pass over new runs and the runs that changed (all active runs on a full sweep). */
  async tick(): Promise<void> {
    const full = this.fullSweep;
    this.fullSweep = false;
    // Taken before the first await: a run announced while this pass reads is looked at by the next one
    // (clearing the set after the read lost those announcements until the next full sweep, 5 s later).
    const dirty = [...this.dirty];
    this.dirty.clear();
    const ids = full ? await runningRunIds(this.o.db) : await withCappedSiblings(this.o.db, dirty);
    let started = 0;
    for (let n = RUNS_PER_TICK; n === RUNS_PER_TICK; started += n) n = await this.startQueuedRuns();
    if (full) this.noRunningRuns = ids.length === 0 && started === 0;
    else if (ids.length > 0 || started > 0) this.noRunningRuns = false;
    for (let i = 0; i < ids.length; i += RUNS_PER_TICK) {
      const chunk = ids.slice(i, i + RUNS_PER_TICK);
      const outbox = await this.o.db
        .tx(async (c) => {
          const locked = await lockRunningRuns(c, chunk, RUNS_PER_TICK);
          // Runs another scheduler holds right now are looked at again shortly.
          const got = new Set(locked.map((r) => r.run_id));
          const missed = chunk.filter((id) => !got.has(id));
          for (const id of await filterRunning(c, missed)) this.deferDirty(id);
          return this.evaluate(c, locked);
        })
        .catch((err) => {
          for (const id of chunk) this.dirty.add(id);
          throw err;
        });
      await this.publish(outbox);
    }
  }

  private deferDirty(runId: string) {
    // Checked again shortly; not in this pass, or two schedulers would spin on each other's locks.
    setTimeout(() => {
      this.dirty.add(runId);
      this.wake();
    }, 50).unref();
  }

  /** Creates the task instances of queued runs and queues their first tasks; returns how many started. */
  private async startQueuedRuns(): Promise<number> {
    // Most passes follow a task's result, with no run waiting: one cheap read instead of a transaction.
    if (!(await anyQueuedRuns(this.o.db))) return 0;
    let started = 0;
    let created = 0;
    const outbox = await this.o.db.tx(async (c) => {
      // Runs of paused DAGs, and beyond a DAG's max_active_runs, stay queued.
      const queued = await lockStartableRuns(c, RUNS_PER_TICK);
      const toCreate: Array<{ runId: string; tasks: SerializedTask[] }> = [];
      for (const r of queued)
        toCreate.push({ runId: r.run_id, tasks: (await this.versions.get(r.dag_hash)).tasks });
      // One statement each for all the runs of the pass: starting 500 runs of 10 tasks took 1,000.
      await tis.createTaskInstancesOfRuns(c, toCreate);
      await markRunning(
        c,
        queued.map((r) => r.run_id),
      );
      created = toCreate.reduce((n, r) => n + r.tasks.length, 0);
      for (const r of queued) this.log.info({ dagId: r.dag_id, runId: r.run_id }, 'run started');
      started = queued.length;
      return this.evaluate(
        c,
        queued.map((r) => ({ ...r, state: 'running' as const })),
      );
    });
    // Before the first messages go out, so that no worker plans its claims on outdated statistics.
    this.createdSinceAnalyze += created;
    if (await refreshStatisticsAfterGrowth(this.o.db, this.createdSinceAnalyze).catch(() => false))
      this.createdSinceAnalyze = 0;
    await this.publish(outbox);
    return started;
  }

  /** Decides and applies the next steps of the given (locked) runs; returns the outbox rows written. */
  private async evaluate(
    c: Parameters<Parameters<Db['tx']>[0]>[0],
    locked: runs.RunRow[],
  ): Promise<OutboxRow[]> {
    if (locked.length === 0) return [];
    const dags = new Map<string, SerializedDag>();
    for (const r of locked) dags.set(r.dag_hash, await this.versions.get(r.dag_hash));
    // decide() reads the choices of branch tasks from their outputs.
    const branchIds = [...dags.values()].flatMap((d) =>
      d.tasks.filter((t) => t.operator === BRANCH_OPERATOR).map((t) => t.taskId),
    );
    const briefs = await tis.briefsForRuns(
      c,
      locked.map((r) => r.run_id),
      [...new Set(branchIds)],
    );
    this.rowsRead += briefs.length;
    const byRun = new Map<string, Map<string, TaskStateBrief>>();
    for (const b of briefs) {
      let m = byRun.get(b.run_id);
      if (!m) byRun.set(b.run_id, (m = new Map()));
      m.set(b.task_id, { state: b.state, nextRetryAt: b.next_retry_at, output: b.output });
    }
    const now = new Date();
    const toQueue: QueueRequest[] = [];
    const toSettle: Array<{ runId: string; taskId: string; state: 'skipped' | 'upstream_failed' }> = [];
    const finished: Array<{ run: runs.RunRow; state: 'success' | 'failed'; dag: SerializedDag }> = [];
    for (const r of locked) {
      const d = decide(dags.get(r.dag_hash)!, byRun.get(r.run_id) ?? new Map(), now);
      for (const q of d.queue) toQueue.push({ runId: r.run_id, ...q });
      for (const s of d.settle) toSettle.push({ runId: r.run_id, ...s });
      if (d.runState) finished.push({ run: r, state: d.runState, dag: dags.get(r.dag_hash)! });
    }
    await settleUnrun(c, toSettle);
    const outbox = await queueTasks(c, await this.withinLimits(c, locked, dags, toQueue));
    const ended = await finishRuns(
      c,
      finished.map((f) => ({ runId: f.run.run_id, state: f.state })),
      this.o.db.channel('events'),
    );
    for (const f of finished) {
      if (ended.has(f.run.run_id)) {
        this.log.info({ dagId: f.run.dag_id, runId: f.run.run_id, state: f.state }, 'run finished');
        this.tickAgain = true; // a run slot is free: a queued run may start
        // The scheduler never runs user code: a run callback is queued for a worker, in this transaction.
        const event = f.state === 'success' ? 'onRunSuccess' : 'onRunFailure';
        const rc = f.dag.runCallbacks;
        if (rc?.[event]) outbox.push(...(await queueRunCallback(c, f.run.run_id, `@${event}`, rc.queue)));
      }
    }
    return outbox;
  }

  /**
   * Keeps of the tasks to queue those that fit: under their DAG's max_active_tasks and with enough free
   * slots in their pool. Candidates go by priority weight (highest first), then run age, so when slots
   * are scarce the heaviest ready tasks get them; a task that needs more slots than are free waits and
   * lighter ones that fit go ahead of it (as in Airflow).
   */
  private async withinLimits(
    c: Parameters<Parameters<Db['tx']>[0]>[0],
    locked: runs.RunRow[],
    dags: ReadonlyMap<string, SerializedDag>,
    toQueue: QueueRequest[],
  ): Promise<QueueRequest[]> {
    if (toQueue.length === 0) return toQueue;
    const runOf = new Map(locked.map((r, i) => [r.run_id, { run: r, age: i }]));
    const specs = new Map<string, Map<string, SerializedTask>>();
    const spec = (runId: string, taskId: string) => {
      const hash = runOf.get(runId)!.run.dag_hash;
      let m = specs.get(hash);
      if (!m) specs.set(hash, (m = new Map(dags.get(hash)!.tasks.map((t) => [t.taskId, t]))));
      return m.get(taskId);
    };
    const candidates = toQueue
      .map((q) => ({
        q,
        dagId: runOf.get(q.runId)!.run.dag_id,
        age: runOf.get(q.runId)!.age,
        t: spec(q.runId, q.taskId),
      }))
      .sort((a, b) => (b.t?.priorityWeight ?? 0) - (a.t?.priorityWeight ?? 0) || a.age - b.age);
    // Locks in a fixed order (DAG rows, then pool rows) so two schedulers never deadlock.
    const dagFree = await lockTaskSlots(c, [...new Set(candidates.map((x) => x.dagId))]);
    const poolNames = [...new Set(candidates.flatMap((x) => (x.t?.pool ? [x.t.pool] : [])))];
    const pools = await lockPoolSlots(c, poolNames);
    const kept: QueueRequest[] = [];
    for (const x of candidates) {
      const dagLeft = dagFree.get(x.dagId);
      if (dagLeft !== undefined && dagLeft <= 0) continue;
      const poolName = x.t?.pool;
      if (poolName) {
        const need = x.t?.poolSlots ?? 1;
        const pool = pools.get(poolName);
        if (!pool) {
          this.warnOnce(
            `missing:${poolName}`,
            { pool: poolName, taskId: x.q.taskId, runId: x.q.runId },
            `task waits for pool "${poolName}", which does not exist: create it with \`airtasks pools set ${poolName} <slots>\``,
          );
          continue;
        }
        if (need > pool.slots) {
          this.warnOnce(
            `size:${poolName}:${need}`,
            { pool: poolName, slots: pool.slots, needs: need, taskId: x.q.taskId },
            `task needs more slots than pool "${poolName}" has; it waits until the pool is made bigger`,
          );
          continue;
        }
        if (need > pool.free) continue;
        pool.free -= need;
      }
      if (dagLeft !== undefined) dagFree.set(x.dagId, dagLeft - 1);
      kept.push(x.q);
    }
    return kept;
  }

  /** Logs a warning at most once a minute per key: a waiting task is looked at on every pass. */
  private warnOnce(key: string, fields: Record<string, unknown>, message: string) {
    const now = Date.now();
    if ((this.warned.get(key) ?? 0) > now - 60_000) return;
    this.warned.set(key, now);
    this.log.warn(fields, message);
  }

  /** Creates the scheduled runs that have come due (also called on a timer). */
  async scheduleRuns() {
    if (this.stopping || this.scheduling) return;
    this.scheduling = true;
    try {
      const now = this.o.clock?.() ?? new Date();
      if ((await createScheduledRuns(this.o.db, this.versions, now, this.log)) > 0) this.wake();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'schedule pass failed');
    } finally {
      this.scheduling = false;
    }
  }

  private publish(rows: OutboxRow[]) {
    return publishOutbox(this.o.broker, this.o.db, rows, this.log);
  }

  private async republishStaleOutbox() {
    if (this.stopping) return;
    try {
      // Almost always empty: one statement to see that, rather than a transaction of three.
      if (!(await anyStaleOutbox(this.o.db, this.o.outboxStaleMs ?? 5000))) return;
      await this.o.db.tx(async (c) => {
        const rows = await lockStaleOutbox(c, this.o.outboxStaleMs ?? 5000, 1000);
        if (rows.length === 0) return;
        await this.o.broker.publish(
          rows.map((r) => ({ queue: r.queue, priority: r.priority, body: r.payload })),
        );
        await deleteOutbox(
          c,
          rows.map((r) => r.id),
        );
        this.log.warn(
          { messages: rows.length },
          'published messages left in the outbox by an interrupted publisher',
        );
      });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'outbox sweep failed');
    }
  }

  /**
   * Sends a new message for queued tries whose message is gone. The rule, per try: queued and unclaimed
   * for longer than requeueAfterMs since its message last went out, no outbox row for it, and its broker
   * queue holds no ready message. A queue with a backlog (ready > 0) may still hold the message, so
   * nothing is re-sent there until it drains: no flood of duplicates. Workers claim a message as soon as
   * it is delivered, so an empty queue and an old unclaimed try mean the message was lost. A duplicate in
   * a rare race is harmless: the claim takes one and the other is acked and ignored.
   */
  async requeueLostMessages() {
    if (this.stopping) return;
    try {
      const after = this.o.requeueAfterMs ?? 60_000;
      const stale = await findStaleQueued(this.o.db, after, 1000);
      if (stale.length === 0) return;
      const depths = await this.o.broker.depths([...new Set(stale.map((s) => s.queue))]);
      const empty = new Set(depths.filter((d) => d.ready === 0).map((d) => d.queue));
      const lost = stale.filter((s) => empty.has(s.queue));
      if (lost.length === 0) return;
      const rows = await this.o.db.tx((c) => requeueStale(c, lost, after));
      if (rows.length === 0) return;
      this.log.warn(
        {
          messages: rows.length,
          tasks: rows.slice(0, 10).map((r) => `${r.payload.runId}/${r.payload.taskId}`),
        },
        'queued tasks lost their messages (empty queue, unclaimed); sent again',
      );
      await this.publish(rows);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'lost-message check failed');
    }
  }

  private async checkDueRetries() {
    if (this.stopping || this.noRunningRuns) return;
    try {
      const due = await runsWithDueRetries(this.o.db);
      if (due.length === 0) return;
      for (const id of due) this.dirty.add(id);
      this.wake();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'retry check failed');
    }
  }

  /** Fails runs that exceeded their DAG's runTimeout and stops their running tasks (as a cancel does). */
  async failTimedOutRuns() {
    if (this.stopping || this.noRunningRuns) return;
    try {
      for (const t of await timedOutRuns(this.o.db)) {
        const reason = `run timed out after ${formatMs(t.timeoutMs)} (runTimeout)`;
        const r = await this.o.db.tx((c) =>
          stopRun(c, t.runId, {
            runState: 'failed',
            reason,
            eventsChannel: this.o.db.channel('events'),
            claimsChannel: this.o.db.channel('claims'),
          }),
        );
        if (r?.stopped)
          this.log.warn(
            {
              dagId: t.dagId,
              runId: t.runId,
              stoppedTasks: r.tasks.filter((x) => x.from === 'running').length,
            },
            reason,
          );
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'run timeout check failed');
    }
  }

  /** Tries whose worker stopped heartbeating: re-run them (a lost try is not the task's failure). */
  async reapZombies() {
    if (this.stopping) return;
    try {
      const threshold = this.o.zombieThresholdMs ?? 30_000;
      for (const z of await findZombies(this.o.db, threshold)) {
        const dag = await this.versions.get(z.dagHash);
        const task = dag.tasks.find((t) => t.taskId === z.taskId);
        // A run callback (@...) runs after its run ended, so no scheduling pass would queue it again.
        const isRunCallback = z.taskId.startsWith('@');
        const freeRetry = !isRunCallback && z.lostTries < (this.o.maxLostTries ?? FREE_LOST_TRIES);
        const retryIn = freeRetry ? 0 : task ? retryDelayMs(task, z.failedTries) : null;
        const error = `worker ${z.workerId ?? '?'} lost: no heartbeat for ${threshold / 1000}s`;
        // Past the free ones, a lost try counts like a failure (and is still recorded as lost).
        const result: TryResult = freeRetry
          ? lostTry(error)
          : {
              state: retryIn !== null ? 'up_for_retry' : 'failed',
              exitCode: null,
              output: null,
              error,
              retryInMs: retryIn,
              countsAsFailure: true,
              lost: true,
            };
        const ok = await finishTry(this.o.db, z, z.token, result, this.o.db.channel('events'));
        if (ok)
          this.log.warn(
            { runId: z.runId, taskId: z.taskId, try: z.tryNumber, retry: retryIn !== null },
            error,
          );
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'zombie check failed');
    }
  }

  /** Stops intake and timers, waits for the pass in progress. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      for (const t of this.timers) clearInterval(t);
      this.unwatch?.();
      await this.listener?.close();
      await this.ticking?.catch(() => undefined);
      this.log.info('scheduler stopped');
    })();
    return this.stopped;
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
