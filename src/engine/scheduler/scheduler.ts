/**
 * The scheduler: starts queued runs, queues every task whose upstreams allow it, settles tasks that will
 * never run, ends finished runs, publishes the outbox, and declares tasks of dead workers lost.
 * Event-driven (LISTEN/NOTIFY from workers and triggers) with periodic sweeps as a safety net.
 * Several schedulers may run at once: each run is processed under a row lock taken with SKIP LOCKED.
 *
 * This class wires its collaborators and timers. A pass, from an announcement to its SQL: RunChanges
 * (the events channel, the runs to look at) wakes the PassLoop, which runs a SchedulingPass: RunStarter
 * starts queued runs, RunEvaluator asks decide() what each locked run does next, Admission keeps the tasks
 * that fit their limits.
 */
import { EngineEventStream } from '../../core/events.js';
import type { Logger } from '../../core/logger.js';
import { silentLogger } from '../../core/logger.js';
import type { Broker } from '../broker/broker.js';
import { DagProcessor } from '../dag/processor.js';
import { VersionCache } from '../dag/versions.js';
import { FREE_LOST_TRIES } from '../lost-try.js';
import { publishOutbox, publishRunOutbox } from '../publish-outbox.js';
import type { Db, Listener } from '../store/db.js';
import type { OutboxRow } from '../store/outbox.js';
import { Admission } from './admission.js';
import { DagsFolder } from './dags-folder.js';
import { LostMessages } from './lost-messages.js';
import { PassLoop } from './pass-loop.js';
import { RunChanges } from './run-changes.js';
import { RunEvaluator } from './run-evaluator.js';
import { RunStarter } from './run-starter.js';
import { RunningRunChecks } from './running-run-checks.js';
import { ScheduledRuns } from './scheduled-runs.js';
import { SchedulingPass } from './scheduling-pass.js';
import { Zombies } from './zombies.js';

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
  /** Where this scheduler tells what it did (core/events.ts); a private stream by default. */
  events?: EngineEventStream;
}

export class Scheduler {
  readonly events: EngineEventStream;
  private readonly log: Logger;
  private readonly t: Timings;
  private readonly stopping = new AbortController();
  private stopped: Promise<void> | null = null;
  private listener: Listener | null = null;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly loop: PassLoop;
  private readonly changes: RunChanges;
  private readonly pass: SchedulingPass;
  private readonly folder: DagsFolder | null;
  private readonly scheduled: ScheduledRuns;
  private readonly runChecks: RunningRunChecks;
  private readonly zombies: Zombies;
  private readonly lostMessages: LostMessages;

  constructor(private readonly o: SchedulerOptions) {
    const { db } = o;
    const t = (this.t = timings(o));
    const log = (this.log = (o.logger ?? silentLogger).child({ component: 'scheduler' }));
    const stopping = this.stopping.signal;
    const events = (this.events = o.events ?? new EngineEventStream(log));
    const versions = new VersionCache(db);
    const publish = (rows: OutboxRow[]) => publishOutbox(o.broker, db, rows, log);
    this.loop = new PassLoop(
      () => this.tick(),
      () => this.changes.sweepAll(),
      log,
      stopping,
    );
    this.changes = new RunChanges(() => this.loop.wake());
    const evaluator = new RunEvaluator({
      versions,
      admission: new Admission(log),
      eventsChannel: db.channel('events'),
      log,
      rowsRead: (n) => this.loop.countRows(n),
      runEnded: () => this.loop.passAgain(),
    });
    const starter = new RunStarter({ db, versions, evaluator, publish, log, events });
    this.pass = new SchedulingPass({ db, changes: this.changes, starter, evaluator, publish, events });
    this.folder = o.dagsFolder
      ? new DagsFolder(
          new DagProcessor(db, o.dagsFolder, {
            logger: log,
            pausedOnCreation: o.pausedOnCreation,
            parseTimeoutMs: o.parseTimeoutMs,
          }),
          log,
          stopping,
        )
      : null;
    const clock = o.clock ?? (() => new Date());
    this.scheduled = new ScheduledRuns({
      db,
      versions,
      clock,
      log,
      created: () => this.loop.wake(),
      stopping,
    });
    this.runChecks = new RunningRunChecks(db, this.changes, log, stopping, events);
    this.zombies = new Zombies({
      db,
      versions,
      log,
      thresholdMs: t.zombieThresholdMs,
      maxLostTries: t.maxLostTries,
      stopping,
      events,
    });
    this.lostMessages = new LostMessages({
      db,
      broker: o.broker,
      publish,
      log,
      outboxStaleMs: t.outboxStaleMs,
      requeueAfterMs: t.requeueAfterMs,
      stopping,
    });
  }

  async start(): Promise<void> {
    const t = this.t;
    this.listener = this.changes.listen(
      this.o.db,
      () => void this.scheduled.createDue(),
      (runId) => void publishRunOutbox(this.o.broker, this.o.db, runId, this.log),
    );
    await this.listener.ready;
    // In the background: scheduling must not wait for DAG files (one may hang at import).
    this.folder?.start();
    await this.scheduled.createDue();
    const every = (ms: number, fn: () => void) => this.timers.push(setInterval(fn, ms));
    every(t.sweepIntervalMs, () => this.changes.sweepAll());
    every(1000, () => void this.runChecks.dueRetries());
    every(t.scheduleIntervalMs, () => void this.scheduled.createDue());
    every(t.runTimeoutCheckMs, () => void this.runChecks.timeouts());
    every(Math.max(250, t.zombieThresholdMs / 4), () => void this.zombies.reap());
    every(Math.max(250, t.outboxStaleMs / 2), () => void this.lostMessages.republishStaleOutbox());
    every(Math.max(250, t.requeueAfterMs / 2), () => void this.lostMessages.requeueLost());
    const folder = this.folder;
    if (folder) {
      if (!folder.watched)
        this.log.warn('the dags folder cannot be watched: changes are seen by scanning it every 2 s at most');
      every(
        folder.watched ? t.dagScanIntervalMs : Math.min(t.dagScanIntervalMs, 2000),
        () => void folder.scan(),
      );
    }
    this.log.info({ dagsFolder: this.o.dagsFolder, broker: this.o.broker.kind }, 'scheduler started');
    this.loop.wake();
  }

  /** One scheduling pass over new runs and the runs that changed (all active runs on a full sweep). */
  async tick(): Promise<void> {
    const t0 = performance.now();
    let ok = false;
    try {
      await this.pass.run();
      ok = true;
    } finally {
      this.events.emit('scheduler.pass', () => ({
        durationMs: Math.round((performance.now() - t0) * 10) / 10,
        ok,
        at: new Date(),
      }));
    }
  }

  /** Re-reads the dags folder now (also called on a timer). */
  async scanDags(force = false) {
    await this.folder?.scan(force);
  }

  /** Resolves once the dags folder was first parsed after start() (at once without a folder). */
  dagsParsed(): Promise<void> {
    return this.folder?.parsed() ?? Promise.resolve();
  }

  /** Creates the scheduled runs that have come due (also called on a timer). */
  scheduleRuns(): Promise<void> {
    return this.scheduled.createDue();
  }

  /** Sends a new message for queued tries whose message is gone (also called on a timer). */
  requeueLostMessages(): Promise<void> {
    return this.lostMessages.requeueLost();
  }

  /** Fails runs that exceeded their DAG's runTimeout (also called on a timer). */
  failTimedOutRuns(): Promise<void> {
    return this.runChecks.timeouts();
  }

  /** Tries whose worker stopped heartbeating: re-run them (also called on a timer). */
  reapZombies(): Promise<void> {
    return this.zombies.reap();
  }

  /** Stops intake and timers, waits for the pass in progress. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping.abort();
      for (const t of this.timers) clearInterval(t);
      await this.folder?.stop();
      await this.listener?.close();
      await this.loop.settled();
      this.log.info('scheduler stopped');
    })();
    return this.stopped;
  }
}

type Timings = ReturnType<typeof timings>;

/** The timings of the options, defaults filled in. */
function timings(o: SchedulerOptions) {
  return {
    dagScanIntervalMs: o.dagScanIntervalMs ?? 30_000,
    sweepIntervalMs: o.sweepIntervalMs ?? 5000,
    zombieThresholdMs: o.zombieThresholdMs ?? 30_000,
    maxLostTries: o.maxLostTries ?? FREE_LOST_TRIES,
    outboxStaleMs: o.outboxStaleMs ?? 5000,
    requeueAfterMs: o.requeueAfterMs ?? 60_000,
    scheduleIntervalMs: o.scheduleIntervalMs ?? 1000,
    runTimeoutCheckMs: o.runTimeoutCheckMs ?? 1000,
  };
}
