/**
 * The DAG version of recent runs, as far as a worker holds it without a read: a task's upstream ids then go
 * with its claim (their outputs come back with it), and a run that may be over can be ended by the worker.
 */
import type { SerializedDag } from '../../core/dag-model.js';
import type { TaskMessage } from '../../core/states.js';
import { parseItemId, tryUpstream } from '../dag/mapped.js';
import { taskOf, type VersionCache } from '../dag/versions.js';

export class RunDags {
  /** Run id -> DAG hash, the oldest forgotten first. */
  private readonly hashes = new Map<string, string>();

  constructor(private readonly versions: VersionCache) {}

  remember(runId: string, hash: string) {
    if (this.hashes.has(runId)) return;
    if (this.hashes.size >= 1000) this.hashes.delete(this.hashes.keys().next().value!);
    this.hashes.set(runId, hash);
  }

  /** The DAG version of a recent run, when this worker holds it already (no read). */
  known(runId: string): SerializedDag | undefined {
    const hash = this.hashes.get(runId);
    return hash ? this.versions.peek(hash) : undefined;
  }

  /**
   * The upstream ids of a message's task when its run's DAG version is known here; null otherwise, and when
   * one is a mapped task (its output is its items', which the try reads itself).
   */
  knownUpstream(m: TaskMessage): string[] | null {
    const dag = this.known(m.runId);
    const task = dag ? taskOf(dag, m.taskId) : undefined;
    const upstream = task ? tryUpstream(task, parseItemId(m.taskId) !== null) : undefined;
    if (upstream?.some((u) => taskOf(dag!, u)?.map)) return null;
    return upstream && upstream.length > 0 ? upstream : null;
  }
}
