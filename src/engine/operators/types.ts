/** The contract between the worker and the code that runs one kind of task. */
import type { SerializedDag, SerializedTask } from '../../core/dag-model.js';
import type { GpuAllocator } from '../worker/gpus.js';

/** Where a task's log lines go: Postgres in a worker, the terminal in `dags test`. */
export interface TaskLog {
  stdout(line: string): void;
  stderr(line: string): void;
  system(line: string): void;
}

export interface RunInfo {
  dagId: string;
  runId: string;
  taskId: string;
  tryNumber: number;
  logicalDate: Date;
  conf: Record<string, unknown>;
  /** Outputs of the task's direct upstream tasks that succeeded. */
  outputs: Map<string, unknown>;
  /** Extra template variables (callbacks add `state`, `error`, `event`). */
  templateVars?: Record<string, unknown>;
}

/** A run to create for a trigger task. */
export interface NewTriggeredRun {
  runId: string;
  dagId: string;
  dagHash: string;
  conf: Record<string, unknown>;
}

/**
 * How trigger tasks start runs of other DAGs: the store in a worker, in-process runs in `dags test`.
 * Creating a run that exists already is not an error (a retried try re-creates the same run ids).
 */
export interface RunLauncher {
  /** The DAG's current version; undefined when no active DAG has this id. */
  currentVersion(dagId: string): Promise<{ hash: string; dag: SerializedDag } | undefined>;
  /** Creates the runs that do not exist yet, together; returns every requested run id's DAG id as stored. */
  createRuns(runs: NewTriggeredRun[]): Promise<{ created: string[]; dagIdOf: Map<string, string> }>;
  /** The current state of each run (queued, running, success, failed, cancelled). */
  runStates(runIds: string[]): Promise<Map<string, string>>;
}

export interface OperatorContext {
  dag: SerializedDag;
  task: SerializedTask;
  run: RunInfo;
  log: TaskLog;
  /** Aborted on timeout, cancel, lost claim or shutdown; the operator must stop its work and return. */
  signal: AbortSignal;
  dagsFolder: string;
  variable(key: string): Promise<string | undefined>;
  /** The worker running the try (AIRTASKS_WORKER_ID in a task's environment); absent in `dags test`. */
  workerId?: string;
  /** The worker's GPUs; tasks that ask for GPUs get specific devices from it. Absent: the engine picks. */
  gpus?: GpuAllocator;
  /**
   * The devices lent to this try (a task with gpus, not docker: it leases its own); absent when the task
   * asks for none or the worker does not manage its GPUs. The task must use these and no others.
   */
  gpuIds?: readonly string[];
  /** Starts runs of other DAGs (trigger tasks). */
  runs?: RunLauncher;
}

export interface OperatorResult {
  output: unknown;
  exitCode?: number | null;
}

export interface Operator {
  readonly name: string;
  execute(ctx: OperatorContext): Promise<OperatorResult>;
}

/** A task failed on its own terms (non-zero exit, thrown error): the try fails and may be retried. */
export class TaskFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number | null = null,
  ) {
    super(message);
    this.name = 'TaskFailure';
  }
}

/**
 * A try ended by the worker's machinery, not by the task (its process host was killed): run it again at
 * once, without counting it against the task's retries, as a try lost with its worker is.
 */
export class TaskLost extends TaskFailure {
  constructor(message: string) {
    super(message);
    this.name = 'TaskLost';
  }
}
