/** Queries about DAGs, their versions and import errors. */
import type { SerializedDag } from '../../core/dag-model.js';
import type { Queryable } from './db.js';

export interface DagRow {
  dag_id: string;
  fileloc: string;
  hash: string;
  is_paused: boolean;
  is_active: boolean;
  description: string;
  tags: string[];
  updated_at: Date;
  last_parsed_at: Date;
  schedule: string | null;
  timezone: string | null;
  max_active_runs: number | null;
  max_active_tasks: number | null;
  last_scheduled_logical_date: Date | null;
  next_logical_date: Date | null;
  next_run_at: Date | null;
  scheduled_hash: string | null;
}

export interface ImportErrorRow {
  fileloc: string;
  message: string;
  occurred_at: Date;
}

/** Records a parsed DAG; returns true when its hash changed (or it is new). */
export async function upsertDag(q: Queryable, s: SerializedDag, hash: string, pausedOnCreation = false) {
  await q.query(
    `INSERT INTO dag_versions (hash, dag_id, serialized) VALUES ($1, $2, $3) ON CONFLICT (hash) DO NOTHING`,
    [hash, s.dagId, JSON.stringify(s)],
  );
  const r = await q.query<{ changed: boolean }>(
    `INSERT INTO dags (dag_id, fileloc, hash, is_paused, description, tags,
                       schedule, timezone, max_active_runs, max_active_tasks)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (dag_id) DO UPDATE SET
       fileloc = EXCLUDED.fileloc, hash = EXCLUDED.hash, description = EXCLUDED.description,
       tags = EXCLUDED.tags, is_active = true, last_parsed_at = now(),
       schedule = EXCLUDED.schedule, timezone = EXCLUDED.timezone,
       max_active_runs = EXCLUDED.max_active_runs, max_active_tasks = EXCLUDED.max_active_tasks,
       updated_at = CASE WHEN dags.hash IS DISTINCT FROM EXCLUDED.hash THEN now() ELSE dags.updated_at END
     RETURNING (xmax = 0 OR updated_at = now()) AS changed`,
    [
      s.dagId,
      s.fileloc,
      hash,
      pausedOnCreation,
      s.description,
      s.tags,
      s.schedule?.cron ?? null,
      s.schedule?.timezone ?? null,
      s.maxActiveRuns ?? null,
      s.maxActiveTasks ?? null,
    ],
  );
  return r.rows[0]?.changed ?? false;
}

/** DAGs whose file is gone or no longer defines them stop being triggerable; their history stays. */
export async function deactivateDags(q: Queryable, fileloc: string, keepDagIds: string[]) {
  await q.query(
    `UPDATE dags SET is_active = false WHERE fileloc = $1 AND is_active AND NOT (dag_id = ANY($2))`,
    [fileloc, keepDagIds],
  );
}

export async function deactivateMissingFiles(q: Queryable, presentFilelocs: string[]) {
  await q.query(`UPDATE dags SET is_active = false WHERE is_active AND NOT (fileloc = ANY($1))`, [
    presentFilelocs,
  ]);
  await q.query(`DELETE FROM import_errors WHERE NOT (fileloc = ANY($1))`, [presentFilelocs]);
}

export async function setImportError(q: Queryable, fileloc: string, message: string) {
  await q.query(
    `INSERT INTO import_errors (fileloc, message) VALUES ($1, $2)
     ON CONFLICT (fileloc) DO UPDATE SET message = EXCLUDED.message, occurred_at = now()`,
    [fileloc, message],
  );
}

export async function clearImportError(q: Queryable, fileloc: string) {
  await q.query(`DELETE FROM import_errors WHERE fileloc = $1`, [fileloc]);
}

export async function listImportErrors(q: Queryable): Promise<ImportErrorRow[]> {
  return (await q.query<ImportErrorRow>(`SELECT * FROM import_errors ORDER BY fileloc`)).rows;
}

export async function listDags(q: Queryable, includeInactive = false): Promise<DagRow[]> {
  return (
    await q.query<DagRow>(`SELECT * FROM dags WHERE is_active OR $1 ORDER BY dag_id`, [includeInactive])
  ).rows;
}

export async function getDag(q: Queryable, dagId: string): Promise<DagRow | undefined> {
  return (await q.query<DagRow>(`SELECT * FROM dags WHERE dag_id = $1`, [dagId])).rows[0];
}

export async function getVersion(q: Queryable, hash: string): Promise<SerializedDag | undefined> {
  return (
    await q.query<{ serialized: SerializedDag }>(`SELECT serialized FROM dag_versions WHERE hash = $1`, [
      hash,
    ])
  ).rows[0]?.serialized;
}

/** Pauses or unpauses a DAG and wakes the schedulers; returns the row, or undefined for an unknown DAG. */
export async function setPaused(
  q: Queryable,
  dagId: string,
  paused: boolean,
  channel?: string,
): Promise<DagRow | undefined> {
  const row = (
    await q.query<DagRow>(`UPDATE dags SET is_paused = $2 WHERE dag_id = $1 RETURNING *`, [dagId, paused])
  ).rows[0];
  if (row && channel) await q.query(`SELECT pg_notify($1, $2)`, [channel, `dag:${dagId}`]);
  return row;
}

/** DAGs whose schedule must be looked at ($1 = now): new or changed since last planned, or due. */
const DUE_SCHEDULE = `schedule IS NOT NULL AND is_active AND NOT is_paused
  AND (scheduled_hash IS DISTINCT FROM hash OR next_run_at <= $1)`;

/** Whether lockDueSchedules would find a DAG: one cheap statement instead of a transaction, most seconds. */
export async function anyDueSchedules(q: Queryable, now: Date): Promise<boolean> {
  const r = await q.query<{ any: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM dags WHERE ${DUE_SCHEDULE}) AS any`,
    [now],
  );
  return r.rows[0]!.any;
}

/**
 * Active, unpaused DAGs with a schedule whose next run is due at `now` (or whose version changed since
 * it was computed), locked so that a second scheduler skips them.
 */
export async function lockDueSchedules(q: Queryable, now: Date, limit: number): Promise<DagRow[]> {
  return (
    await q.query<DagRow>(
      `SELECT * FROM dags WHERE ${DUE_SCHEDULE}
       ORDER BY next_run_at NULLS FIRST LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [now, limit],
    )
  ).rows;
}

/** Records what the scheduler created for a DAG and when its next scheduled run is due. */
export async function setScheduleState(
  q: Queryable,
  dagId: string,
  st: {
    hash: string;
    lastLogicalDate: Date | null;
    nextLogicalDate: Date | null;
    nextRunAt: Date | null;
  },
) {
  await q.query(
    `UPDATE dags SET scheduled_hash = $2, next_logical_date = $4, next_run_at = $5,
       last_scheduled_logical_date = GREATEST(last_scheduled_logical_date, $3)
     WHERE dag_id = $1`,
    [dagId, st.hash, st.lastLogicalDate, st.nextLogicalDate, st.nextRunAt],
  );
}
