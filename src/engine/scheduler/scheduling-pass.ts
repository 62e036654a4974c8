/**
 * One scheduling pass: starts queued runs, then evaluates the runs that changed (all running runs on a full
 * sweep), a chunk of runs per transaction, each run under a row lock taken with SKIP LOCKED so that several
 * schedulers can share the work. The outbox rows a transaction wrote are published after its commit.
 */
import type { EngineEventStream } from '../../core/events.js';
import type { Db } from '../store/db.js';
import type { OutboxRow } from '../store/outbox.js';
import { filterRunning, lockRunningRuns, runningRunIds, withCappedSiblings } from '../store/run-passes.js';
import type { RunChanges } from './run-changes.js';
import type { RunEvaluator } from './run-evaluator.js';
import type { RunStarter } from './run-starter.js';

/** Runs started, or locked and evaluated, in one transaction. */
const RUNS_PER_TX = 200;

export interface SchedulingPassDeps {
  db: Db;
  changes: RunChanges;
  starter: RunStarter;
  evaluator: RunEvaluator;
  publish: (rows: OutboxRow[]) => Promise<void>;
  events: EngineEventStream;
}

export class SchedulingPass {
  constructor(private readonly d: SchedulingPassDeps) {}

  /** One scheduling pass over new runs and the runs that changed (all active runs on a full sweep). */
  async run(): Promise<void> {
    const { db, changes } = this.d;
    const { full, runIds } = changes.take();
    // New runs first: a triggered run's first tasks wait for nothing else of the pass.
    let started = 0;
    for (let n = RUNS_PER_TX; n === RUNS_PER_TX; started += n) n = await this.d.starter.start(RUNS_PER_TX);
    const ids = full ? await runningRunIds(db) : await withCappedSiblings(db, runIds);
    changes.found(full, ids.length, started);
    for (let i = 0; i < ids.length; i += RUNS_PER_TX) {
      const chunk = ids.slice(i, i + RUNS_PER_TX);
      const pending = this.d.events.pending();
      const outbox = await db
        .tx(async (c) => {
          const locked = await lockRunningRuns(c, chunk, RUNS_PER_TX);
          // Runs another scheduler holds right now are looked at again shortly.
          const got = new Set(locked.map((r) => r.run_id));
          const missed = chunk.filter((id) => !got.has(id));
          for (const id of await filterRunning(c, missed)) changes.later(id);
          return this.d.evaluator.evaluate(c, locked, pending);
        })
        .catch((err) => {
          changes.putBack(chunk);
          throw err;
        });
      pending.emit();
      await this.d.publish(outbox);
    }
  }
}
