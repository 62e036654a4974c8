/**
 * Ends a run, or tells the schedulers, when it may be over, after results that could have been its last.
 * The check (endRunsIfOver) must start after the result's commit, so that of two last tasks ending
 * together the later one sees the other finished; it need not hold the task's slot, and many results of
 * one run need not each pay for one: on a 20,000-task fan-out the check walks the index entries of every
 * task already finished (about 4 ms of Postgres' time each, near the end), and leaves end by the thousand.
 * So a run is checked at once when it was not checked in the last `intervalMs`, else once more when that
 * interval is over (a trailing check, which starts after every result that asked before it). A run's first
 * result that is likely not its last (one leaf of several: its siblings are still running, as in many
 * small runs of independent tasks) is checked only after the interval: a check at once would find the
 * run unfinished, one statement per run for nothing. Trailing checks wait for the next tick of a clock
 * shared by all runs (every `intervalMs`), so that those of runs ending about together, as many small
 * runs do, go as one statement rather than one each.
 */
import type { Logger } from '../../core/logger.js';
import { Batcher } from './batcher.js';

interface RunState {
  /** When the last check of this run was handed to the batcher. */
  lastAt: number;
  /** The tick its trailing check waits for, if it has one. */
  trailing: number | null;
}

interface Tick {
  timer: NodeJS.Timeout;
  runs: Map<string, RunState>;
}

export class RunEndChecks {
  private readonly runs = new Map<string, RunState>();
  private readonly batcher: Batcher<string, null>;
  /** Trailing checks by the tick they wait for (a multiple of intervalMs on performance.now()'s clock). */
  private readonly ticks = new Map<number, Tick>();

  constructor(
    /** Ends those runs that are over, or tells the schedulers about them (endRunsIfOver). */
    check: (runIds: string[]) => Promise<void>,
    private readonly log: Logger,
    private readonly intervalMs = 50,
  ) {
    this.batcher = new Batcher(async (runIds) => {
      await check([...new Set(runIds)]);
      return runIds.map(() => null);
    });
  }

  /**
   * Call after a result of the run is committed; `likelyLast` false for a result that is unlikely to end
   * it (see above). Never throws; the schedulers' sweep is the fallback.
   */
  mayHaveEnded(runId: string, likelyLast = true) {
    const now = performance.now();
    let s = this.runs.get(runId);
    if (s && s.trailing !== null) return;
    // A run not checked yet counts as checked just now when this result is unlikely to end it.
    if (!s) this.remember(runId, (s = { lastAt: likelyLast ? -Infinity : now, trailing: null }), now);
    const since = now - s.lastAt;
    if (since < this.intervalMs) this.trail(runId, s, this.intervalMs - since);
    else this.start(runId, s);
  }

  private remember(runId: string, s: RunState, now: number) {
    // Forget runs not asked about for a while: a worker sees many runs over its life.
    if (this.runs.size >= 1000) this.prune(now);
    this.runs.set(runId, s);
  }

  /**
   * A check of the run at the first tick at least `ms` from now, which starts after every result that asks
   * before then, together with the other runs' checks of that tick.
   */
  private trail(runId: string, s: RunState, ms: number) {
    const now = performance.now();
    const at = Math.ceil((now + ms) / this.intervalMs) * this.intervalMs;
    let tick = this.ticks.get(at);
    if (!tick) {
      const timer = setTimeout(() => this.fire(at), at - now);
      this.ticks.set(at, (tick = { timer, runs: new Map() }));
    }
    tick.runs.set(runId, s);
    s.trailing = at;
  }

  private fire(at: number) {
    const tick = this.ticks.get(at);
    if (!tick) return;
    clearTimeout(tick.timer);
    this.ticks.delete(at);
    for (const [runId, s] of tick.runs) {
      s.trailing = null;
      this.start(runId, s);
    }
  }

  private start(runId: string, s: RunState) {
    s.lastAt = performance.now();
    this.batcher
      .add(runId)
      .catch((err: Error) =>
        this.log.warn({ runId, err: err.message }, 'telling the schedulers failed; their sweep ends the run'),
      );
  }

  private prune(now: number) {
    for (const [id, s] of this.runs)
      if (s.trailing === null && now - s.lastAt >= this.intervalMs) this.runs.delete(id);
  }

  /** Runs the trailing checks now and waits for every check asked for so far (for a draining worker). */
  async flush(): Promise<void> {
    for (const at of [...this.ticks.keys()]) this.fire(at);
    await this.batcher.idle();
  }
}
