/** What holds a task, as data (`airtasks why --json`, the dashboard) and as the one line a person reads. */
import type { TriggerRule } from '../core/dag-model.js';
import type { RunState, TaskState } from '../core/states.js';

/** A task instance that holds a slot, or a GPU. */
export interface TaskRef {
  runId: string;
  taskId: string;
  tryNumber: number;
  state?: TaskState;
}

export type WaitReason =
  /** The task ended (asked for by name). */
  | { kind: 'finished'; state: TaskState }
  /** Its run ended without it (cancelled, timed out). */
  | { kind: 'run_ended'; runState: RunState }
  /** The run is queued and its DAG is paused: queued runs of paused DAGs do not start. */
  | { kind: 'dag_paused'; dagId: string }
  /** The run is queued and its DAG already runs maxActiveRuns runs. */
  | { kind: 'max_active_runs'; dagId: string; limit: number; runningRuns: string[] }
  /** The run is queued with a free run slot: the next scheduling pass starts it (after `queuedBefore`). */
  | { kind: 'run_queued'; queuedBefore: number }
  /** Upstream tasks are not done, and the trigger rule cannot decide yet. */
  | { kind: 'upstream'; triggerRule: TriggerRule; notDone: Array<{ taskId: string; state: TaskState }> }
  /** The trigger rule (or a branch) decided the task will not run; the next pass settles it so. */
  | { kind: 'trigger_rule'; triggerRule: TriggerRule; verdict: 'skipped' | 'upstream_failed' }
  | { kind: 'retry_wait'; nextTry: number; until: string; inMs: number }
  | { kind: 'pool_missing'; pool: string }
  | { kind: 'pool_too_small'; pool: string; slots: number; needs: number }
  | {
      kind: 'pool_full';
      pool: string;
      slots: number;
      free: number;
      needs: number;
      holders: Array<TaskRef & { slots: number }>;
    }
  | { kind: 'max_active_tasks'; dagId: string; limit: number; used: number; holders: TaskRef[] }
  /** Nothing holds it: the next scheduling pass queues it. */
  | { kind: 'ready' }
  /** Queued; its message is still in the outbox (the scheduler publishes it, or re-publishes a stale one). */
  | { kind: 'outbox'; queue: string; since: string }
  | { kind: 'broker_unreachable'; queue: string; error: string }
  | { kind: 'no_worker'; queue: string }
  | {
      kind: 'workers_busy';
      queue: string;
      workers: Array<{ workerId: string; busy: number; slots: number }>;
    }
  | {
      kind: 'in_broker';
      queue: string;
      since: string | null;
      ready: number | null;
      unacked: number | null;
      consumers: number | null;
      workers: number;
    }
  /** Claimed by a worker, waiting there for GPUs that other tasks hold. */
  | {
      kind: 'gpus_held';
      workerId: string;
      request: string;
      devices: string[];
      holders: Array<TaskRef & { ids: string[] }>;
    }
  | {
      kind: 'running';
      workerId: string | null;
      hostname: string | null;
      since: string | null;
      /** How long its worker has been silent, when longer than a few heartbeats (it may be lost). */
      workerSilentMs: number | null;
      gpus: string[];
    };

export interface TaskWait {
  taskId: string;
  state: TaskState;
  reason: WaitReason;
  /** The reason in one line. */
  text: string;
}

export interface WhyResult {
  runId: string;
  dagId: string;
  runState: RunState;
  /** The unfinished tasks (or the one asked for), in the DAG's order. */
  tasks: TaskWait[];
}

const MAX_NAMED = 5;

/** Names a list, the first few of it: `a, b, c and 4 more`. */
function names(items: string[]): string {
  if (items.length <= MAX_NAMED) return items.join(', ');
  return `${items.slice(0, MAX_NAMED).join(', ')} and ${items.length - MAX_NAMED} more`;
}

const ref = (t: TaskRef) => `${t.runId}/${t.taskId}#${t.tryNumber}`;
const seconds = (ms: number) => `${Math.max(0, Math.round(ms / 1000))}s`;

export function reasonText(r: WaitReason): string {
  switch (r.kind) {
    case 'finished':
      return `finished: ${r.state}`;
    case 'run_ended':
      return `its run ended (${r.runState}) before it ran`;
    case 'dag_paused':
      return `DAG ${r.dagId} is paused: its queued runs do not start (airtasks dags unpause ${r.dagId})`;
    case 'max_active_runs':
      return `DAG ${r.dagId} runs ${r.runningRuns.length} of ${r.limit} runs at once (maxActiveRuns): ${names(r.runningRuns)}`;
    case 'run_queued':
      return r.queuedBefore > 0
        ? `run is queued behind ${r.queuedBefore} older queued run(s) of its DAG; a scheduler starts it`
        : 'run is queued: the next scheduling pass starts it (is a scheduler running?)';
    case 'upstream':
      return `waits for upstream ${names(r.notDone.map((u) => `${u.taskId} (${u.state})`))} [${r.triggerRule}]`;
    case 'trigger_rule':
      return `trigger rule ${r.triggerRule} decided it will not run: the next scheduling pass marks it ${r.verdict}`;
    case 'retry_wait':
      return `try ${r.nextTry} waits until ${r.until} (in ${seconds(r.inMs)}) before it retries`;
    case 'pool_missing':
      return `pool ${r.pool} does not exist: create it (airtasks pools set ${r.pool} <slots>)`;
    case 'pool_too_small':
      return `needs ${r.needs} slots of pool ${r.pool}, which has ${r.slots}: make it bigger (airtasks pools set ${r.pool} <slots>)`;
    case 'pool_full':
      return (
        `pool ${r.pool} is full (${r.free} of ${r.slots} slots free, needs ${r.needs}): held by ` +
        names(r.holders.map((h) => `${ref(h)} (${h.slots}, ${h.state})`))
      );
    case 'max_active_tasks':
      return (
        `DAG ${r.dagId} has ${r.used} of ${r.limit} tasks queued or running (maxActiveTasks): ` +
        names(r.holders.map((h) => `${ref(h)} (${h.state})`))
      );
    case 'ready':
      return 'ready: the next scheduling pass queues it (is a scheduler running?)';
    case 'outbox':
      return `queued on ${r.queue} since ${r.since}, its message not yet published to the broker (outbox)`;
    case 'broker_unreachable':
      return `queued on ${r.queue}; the broker cannot be asked: ${r.error}`;
    case 'no_worker':
      return `queued on ${r.queue}, and no live worker consumes that queue: start one (airtasks worker -q ${r.queue})`;
    case 'workers_busy':
      return (
        `queued on ${r.queue}: every worker of the queue is busy: ` +
        names(r.workers.map((w) => `${w.workerId} ${w.busy}/${w.slots}`))
      );
    case 'in_broker': {
      const depth = r.ready === null ? '' : ` (${r.ready} ready, ${r.unacked ?? '?'} unacked)`;
      return `queued on ${r.queue}${r.since ? ` since ${r.since}` : ''}: its message waits in the broker${depth} for one of ${r.workers} worker(s)`;
    }
    case 'gpus_held':
      return (
        `claimed by worker ${r.workerId}, waits for GPUs (${r.request}): ` +
        (r.holders.length > 0
          ? `held by ${names(r.holders.map((h) => `${ref(h)} (GPU ${h.ids.join(',')})`))}`
          : `${r.devices.length} device(s), all busy`)
      );
    case 'running': {
      const where = r.workerId ? ` on worker ${r.workerId}${r.hostname ? ` (${r.hostname})` : ''}` : '';
      const gpus = r.gpus.length > 0 ? ` with GPU ${r.gpus.join(',')}` : '';
      const silent =
        r.workerSilentMs !== null
          ? `; its worker has not heartbeated for ${seconds(r.workerSilentMs)} (a scheduler declares it lost)`
          : '';
      return `running${where}${r.since ? ` since ${r.since}` : ''}${gpus}${silent}`;
    }
  }
}
