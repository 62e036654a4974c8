/**
 * What the next scheduling pass looks at: the runs announced on the events channel since the last pass,
 * or every active run (a full sweep) when an announcement may have been missed. Also whether any run is
 * running at all, which lets the per-second checks of running runs rest.
 */
import type { Db, Listener } from '../store/db.js';

export class RunChanges {
  private readonly dirty = new Set<string>();
  private fullSweep = true;
  private noneRunning = false;

  constructor(
    /** Starts a pass, or another after the one under way. */
    private readonly wake: () => void,
  ) {}

  /**
   * Listens on the events channel; `onDagChange` is called when a DAG was paused or unpaused, `onOutbox`
   * with a run that another process started and whose first messages it leaves to the schedulers.
   */
  listen(db: Db, onDagChange: () => void, onOutbox: (runId: string) => void): Listener {
    return db.listen(
      [db.channel('events')],
      (_ch, payload) => {
        if (payload.startsWith('run:')) return;
        // Started where it was created (engine/start-run.ts): nothing to decide until a task ends, but a
        // run is running now.
        if (payload.startsWith('started:') || payload.startsWith('outbox:')) {
          this.noneRunning = false;
          if (payload.startsWith('outbox:')) onOutbox(payload.slice('outbox:'.length));
          return;
        }
        if (payload.startsWith('pool:')) {
          // A pool was created or resized: tasks of any run may be waiting for its slots.
          this.sweepAll();
          return;
        }
        if (payload.startsWith('dag:')) {
          // A DAG was paused or unpaused: its queued runs may start, its schedule may be due.
          onDagChange();
          this.wake();
          return;
        }
        this.dirty.add(payload);
        this.noneRunning = false;
        this.wake();
      },
      () => this.sweepAll(),
    );
  }

  /** The next pass looks at every active run. */
  sweepAll() {
    this.fullSweep = true;
    this.wake();
  }

  /** The next pass looks at these runs (retries came due). */
  recheck(runIds: string[]) {
    for (const id of runIds) this.dirty.add(id);
    this.wake();
  }

  /** Runs a failed transaction had taken: the next pass looks at them again. */
  putBack(runIds: string[]) {
    for (const id of runIds) this.dirty.add(id);
  }

  /** A run another scheduler holds locked: looked at again shortly. */
  later(runId: string) {
    // Not in this pass, or two schedulers would spin on each other's locks.
    setTimeout(() => {
      this.dirty.add(runId);
      this.wake();
    }, 50).unref();
  }

  /**
   * What a pass looks at, taken before its first await: a run announced while the pass reads is looked at
   * by the next one (clearing the set after the read lost those announcements until the next full sweep).
   */
  take(): { full: boolean; runIds: string[] } {
    const full = this.fullSweep;
    this.fullSweep = false;
    const runIds = [...this.dirty];
    this.dirty.clear();
    return { full, runIds };
  }

  /** A pass found `running` runs to look at and started `started` queued ones. */
  found(full: boolean, running: number, started: number) {
    if (full) this.noneRunning = running === 0 && started === 0;
    else if (running > 0 || started > 0) this.noneRunning = false;
  }

  /**
   * The last full sweep found no running run, and nothing started since: the per-second checks of running
   * runs (due retries, run timeouts) have nothing to find. Any event about a run clears it; a run another
   * scheduler started is found by the next sweep (every few seconds), and that scheduler checks it meanwhile.
   */
  get noRunningRuns(): boolean {
    return this.noneRunning;
  }
}
