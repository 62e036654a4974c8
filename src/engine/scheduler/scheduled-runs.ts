/**
 * Schedule keeping: creates the scheduled runs that have come due for every unpaused DAG with a schedule.
 * Safe with several schedulers: each DAG row is taken with SKIP LOCKED, and run ids are deterministic
 * (scheduled__<dag>__<logical date>) so a run is never created twice.
 */
import { applyParams } from '../dag/params.js';
import type { VersionCache } from '../dag/versions.js';
import type { Logger } from '../../core/logger.js';
import * as dags from '../store/dags.js';
import type { Db } from '../store/db.js';
import * as runs from '../store/runs.js';
import { planScheduledRuns, scheduledRunId } from './schedules.js';

const DAGS_PER_PASS = 100;

export interface ScheduledRunsDeps {
  db: Db;
  versions: VersionCache;
  /** The time schedules are computed against. */
  clock: () => Date;
  log: Logger;
  /** Called when runs were created: they are queued, for a scheduling pass to start. */
  created: () => void;
  stopping: AbortSignal;
}

/** Schedule passes on a timer and on DAG changes, one at a time: a call during a pass does nothing. */
export class ScheduledRuns {
  private creating = false;

  constructor(private readonly d: ScheduledRunsDeps) {}

  /** Creates the scheduled runs that have come due. */
  async createDue(): Promise<void> {
    if (this.d.stopping.aborted || this.creating) return;
    this.creating = true;
    try {
      if ((await createScheduledRuns(this.d.db, this.d.versions, this.d.clock(), this.d.log)) > 0)
        this.d.created();
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, 'schedule pass failed');
    } finally {
      this.creating = false;
    }
  }
}

/** Returns how many runs it created. */
export async function createScheduledRuns(db: Db, versions: VersionCache, now: Date, log: Logger) {
  // Called every second; most seconds nothing is due, which one statement tells.
  if (!(await dags.anyDueSchedules(db, now))) return 0;
  return db.tx(async (c) => {
    let created = 0;
    for (const d of await dags.lockDueSchedules(c, now, DAGS_PER_PASS)) {
      const v = await versions.get(d.hash);
      if (!v.schedule) {
        await dags.setScheduleState(c, d.dag_id, {
          hash: d.hash,
          lastLogicalDate: null,
          nextLogicalDate: null,
          nextRunAt: null,
        });
        continue;
      }
      let plan;
      let conf: Record<string, unknown> = {};
      try {
        plan = planScheduledRuns(v.schedule, d.last_scheduled_logical_date, now, { seed: d.dag_id });
        // A scheduled run's conf is the params' defaults (checked to be valid when the file was parsed).
        conf = applyParams(v.params, {}, d.dag_id);
      } catch (err) {
        // Only a changed time zone database gets here; tried again when the DAG changes.
        log.error({ dagId: d.dag_id, err: (err as Error).message }, 'cannot schedule the DAG');
        plan = { logicalDates: [], nextLogicalDate: null, nextRunAt: null };
      }
      const wanted = plan.logicalDates.map((logicalDate) => ({
        runId: scheduledRunId(d.dag_id, logicalDate),
        dagId: d.dag_id,
        dagHash: d.hash,
        conf,
        runType: 'scheduled',
        logicalDate,
      }));
      const made = new Set((await runs.createRuns(c, wanted, db.channel('events'))).created);
      for (const r of wanted.filter((w) => made.has(w.runId))) {
        created++;
        log.info(
          { dagId: d.dag_id, runId: r.runId, logicalDate: r.logicalDate.toISOString() },
          'scheduled run created',
        );
      }
      await dags.setScheduleState(c, d.dag_id, {
        hash: d.hash,
        lastLogicalDate: plan.logicalDates.at(-1) ?? null,
        nextLogicalDate: plan.nextLogicalDate,
        nextRunAt: plan.nextRunAt,
      });
    }
    return created;
  });
}
