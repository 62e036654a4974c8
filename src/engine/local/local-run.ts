/**
 * Runs a DAG (or one task) in this process with no database and no broker: `airtasks dags test` and
 * `airtasks tasks test`, for DAG authors and CI. Same trigger-rule logic (decide) and the same tries
 * (executeTry) as the real workers; logs go to a callback instead of Postgres (see LocalSession).
 */
import { parseDagFiles, listDagFiles } from '../dag/loader.js';
import { applyParams, ConfValidationError } from '../dag/params.js';
import type { SerializedDag } from '../../core/dag-model.js';
import { notFound, usageError } from '../../core/errors.js';
import type { TaskState } from '../../core/states.js';
import { LocalSession } from './local-session.js';

export interface LocalRunOptions {
  dagsFolder: string;
  dagId: string;
  conf: Record<string, unknown>;
  /** Run only this task, once, ignoring its upstreams (their outputs are undefined). */
  taskId?: string;
  /** Variables the tasks can read (there is no database). */
  variables?: Record<string, string>;
  /** Tasks run at once. */
  concurrency?: number;
  onLog?: (taskId: string, tryNumber: number, stream: string, line: string) => void;
  onTaskChange?: (taskId: string, state: TaskState, tryNumber: number) => void;
}

export interface LocalTaskResult {
  taskId: string;
  state: TaskState;
  tryNumber: number;
  output: unknown;
  error: string | null;
}

export interface LocalRunResult {
  dagId: string;
  runId: string;
  state: 'success' | 'failed';
  tasks: LocalTaskResult[];
  /** Runs that trigger tasks started (run here too, after the DAG's own tasks). */
  triggeredRuns?: Array<{ dagId: string; runId: string; state: string }>;
}

/** Finds the DAG in the folder, importing the files in a child process as the scheduler does. */
export async function loadDag(dagsFolder: string, dagId: string): Promise<SerializedDag> {
  return (await loadDags(dagsFolder, dagId)).get(dagId)!;
}

/** Every DAG of the folder by id; a not-found error when `dagId` is not among them. */
async function loadDags(dagsFolder: string, dagId: string): Promise<Map<string, SerializedDag>> {
  const results = await parseDagFiles(await listDagFiles(dagsFolder));
  const all = new Map<string, SerializedDag>();
  for (const r of results) for (const d of r.dags) if (!all.has(d.dagId)) all.set(d.dagId, d);
  if (all.has(dagId)) return all;
  const broken = results.filter((r) => r.error);
  throw notFound(
    `no DAG "${dagId}" in ${dagsFolder}` +
      (broken.length
        ? `; ${broken.length} file(s) failed to import: ${broken.map((b) => `${b.fileloc}: ${b.error}`).join('; ')}`
        : ''),
  );
}

export async function runLocally(o: LocalRunOptions): Promise<LocalRunResult> {
  const all = await loadDags(o.dagsFolder, o.dagId);
  const dag = all.get(o.dagId)!;
  let conf: Record<string, unknown>;
  try {
    conf = applyParams(dag.params, o.conf, dag.dagId);
  } catch (err) {
    if (err instanceof ConfValidationError) throw usageError(err.message);
    throw err;
  }
  const session = new LocalSession(o, all);
  const result = await session.run(dag, conf, `test__${new Date().toISOString()}`, o.taskId);
  const triggered = await session.drain();
  return triggered.length > 0 ? { ...result, triggeredRuns: triggered } : result;
}
