/** The check a worker runs when its results may have ended runs (RunEndChecks decides when). */
import type { SerializedDag } from '../../core/dag-model.js';
import type { EngineEventStream } from '../../core/events.js';
import type { Logger } from '../../core/logger.js';
import type { Db } from '../store/db.js';
import { endRunsIfOver } from '../store/run-progress.js';
import type { RunDags } from './run-dags.js';

/**
 * Ends those of the runs whose every task succeeded (a run whose DAG has a run-success callback, or whose
 * DAG version this worker does not hold, is left to the schedulers, as is any other run that is over).
 */
export async function endSucceededRuns(
  db: Db,
  runDags: RunDags,
  runIds: string[],
  log: Logger,
  events: EngineEventStream,
) {
  const dags = new Map<string, SerializedDag>();
  for (const runId of runIds) {
    const dag = runDags.known(runId);
    if (dag && !dag.runCallbacks?.onRunSuccess) dags.set(runId, dag);
  }
  const ended = await endRunsIfOver(db, db.channel('events'), runIds, [...dags.keys()]);
  for (const runId of ended) {
    const dagId = dags.get(runId)?.dagId ?? null;
    log.info({ dagId: dagId ?? undefined, runId, state: 'success' }, 'run finished');
    events.emit('run.ended', () => ({ dagId, runId, state: 'success', at: new Date() }));
  }
}
