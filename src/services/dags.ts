/** Listing, showing and validating DAGs. */
import { listDagFiles, parseDagFiles } from '../engine/dag/loader.js';
import { paramsOf, type ParamInfo } from '../engine/dag/params.js';
import type { SerializedDag } from '../core/dag-model.js';
import { NotFoundError } from '../core/errors.js';
import type { Queryable } from '../engine/store/db.js';
import * as dags from '../engine/store/dags.js';
import { resolveDagsFolder, type ConnectionOptions } from './config.js';
import { withEngine } from './engine.js';

/** A DAG's schedule and pause state as the store knows it. */
export interface DagScheduleState {
  dagId: string;
  paused: boolean;
  /** Cron expression or preset; null: manual runs only. */
  schedule: string | null;
  timezone: string | null;
  maxActiveRuns: number | null;
  maxActiveTasks: number | null;
  /** Logical date of the next scheduled run, and when it will be created (the end of its interval). */
  nextLogicalDate: string | null;
  nextRunAt: string | null;
  lastScheduledLogicalDate: string | null;
}

export interface DagListing {
  dags: Array<
    DagScheduleState & {
      fileloc: string;
      hash: string;
      tasks: number;
      updatedAt: string;
    }
  >;
  importErrors: Array<{ fileloc: string; message: string }>;
}

function scheduleState(r: dags.DagRow): DagScheduleState {
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  const scheduled = r.schedule !== null;
  return {
    dagId: r.dag_id,
    paused: r.is_paused,
    schedule: r.schedule,
    timezone: r.timezone,
    maxActiveRuns: r.max_active_runs,
    maxActiveTasks: r.max_active_tasks,
    // Computed by a scheduler for the current version; stale values of an older version are not shown.
    nextLogicalDate: scheduled && r.scheduled_hash === r.hash ? iso(r.next_logical_date) : null,
    nextRunAt: scheduled && r.scheduled_hash === r.hash ? iso(r.next_run_at) : null,
    lastScheduledLogicalDate: iso(r.last_scheduled_logical_date),
  };
}

export async function listDags(o: ConnectionOptions): Promise<DagListing> {
  return withEngine(o, async (e) => {
    const rows = await dags.listDags(e.db);
    const out: DagListing = { dags: [], importErrors: [] };
    for (const r of rows) {
      const v = await dags.getVersion(e.db, r.hash);
      out.dags.push({
        ...scheduleState(r),
        fileloc: r.fileloc,
        hash: r.hash,
        tasks: v?.tasks.length ?? 0,
        updatedAt: r.updated_at.toISOString(),
      });
    }
    out.importErrors = (await dags.listImportErrors(e.db)).map((x) => ({
      fileloc: x.fileloc,
      message: x.message,
    }));
    return out;
  });
}

/** A DAG's stored version (its schedule and limits included) and its state in the store. */
export type DagDetails = SerializedDag & {
  hash: string;
  /** The run parameters its params schema declares, for a table or a trigger form. */
  paramList: ParamInfo[];
} & Pick<DagScheduleState, 'paused' | 'nextLogicalDate' | 'nextRunAt' | 'lastScheduledLogicalDate'>;

export async function showDag(o: ConnectionOptions & { dagId: string }): Promise<DagDetails> {
  return withEngine(o, async (e) => {
    const row = await dags.getDag(e.db, o.dagId);
    if (!row) throw new NotFoundError('dag', o.dagId, `unknown DAG "${o.dagId}"`);
    const v = await dags.getVersion(e.db, row.hash);
    if (!v) throw new NotFoundError('dag', o.dagId, `DAG "${o.dagId}" has no stored version`);
    const st = scheduleState(row);
    return {
      ...v,
      hash: row.hash,
      paramList: paramsOf(v.params),
      paused: st.paused,
      nextLogicalDate: st.nextLogicalDate,
      nextRunAt: st.nextRunAt,
      lastScheduledLogicalDate: st.lastScheduledLogicalDate,
    };
  });
}

/**
 * Pauses or unpauses a DAG. A paused DAG gets no scheduled runs, and its queued runs (manual ones
 * included) wait until it is unpaused; runs already running go on to their end.
 */
export async function setDagPaused(
  o: ConnectionOptions & { dagId: string; paused: boolean },
): Promise<DagScheduleState> {
  return withEngine(o, async (e) => {
    const row = await dags.setPaused(e.db, o.dagId, o.paused, e.db.channel('events'));
    if (!row) throw await unknownDag(e.db, o.dagId);
    return scheduleState(row);
  });
}

/** Not found: a DAG the store does not know (or no longer has a file for), with the ones it knows. */
export async function unknownDag(db: Queryable, dagId: string): Promise<NotFoundError> {
  const known = (await dags.listDags(db)).map((d) => d.dag_id);
  const errors = await dags.listImportErrors(db);
  return new NotFoundError(
    'dag',
    dagId,
    `unknown DAG "${dagId}"` +
      (known.length
        ? `; known DAGs: ${known.join(', ')}`
        : '; no DAGs are known yet (is a scheduler running on the dags folder?)') +
      (errors.length ? `; ${errors.length} file(s) failed to import (airtasks dags list)` : ''),
  );
}

export interface ValidationReport {
  dagsFolder: string;
  files: number;
  dags: Array<{ dagId: string; fileloc: string; tasks: number }>;
  errors: Array<{ fileloc: string; message: string }>;
}

/** Imports every DAG file of the folder, with no database: a CI check for DAG folders. */
export async function validateDags(o: { dagsFolder?: string; cwd?: string }): Promise<ValidationReport> {
  const folder = resolveDagsFolder(o);
  const files = await listDagFiles(folder).catch((err: Error) => {
    throw new NotFoundError('folder', folder, `cannot read the dags folder ${folder}: ${err.message}`, {
      cause: err,
    });
  });
  const results = await parseDagFiles(files);
  const report: ValidationReport = { dagsFolder: folder, files: files.length, dags: [], errors: [] };
  const owner = new Map<string, string>();
  for (const r of results) {
    if (r.error) {
      report.errors.push({ fileloc: r.fileloc, message: r.error });
      continue;
    }
    for (const d of r.dags) {
      const first = owner.get(d.dagId);
      if (first)
        report.errors.push({
          fileloc: r.fileloc,
          message: `DAG id "${d.dagId}" is already defined in ${first}`,
        });
      else owner.set(d.dagId, r.fileloc);
      report.dags.push({ dagId: d.dagId, fileloc: r.fileloc, tasks: d.tasks.length });
    }
  }
  return report;
}
