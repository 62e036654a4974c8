/**
 * The engine's event stream: what changed, told after the change committed (a duplicate or late message,
 * or a result fenced out, tells nothing). Events are emitted synchronously in the engine's thread, so a
 * listener must be quick and must not throw (one that throws is logged and the engine goes on). Payloads
 * are built only when someone listens to that event: a stream nobody listens to costs a map lookup.
 *
 * An event tells what this process saw: a run cancelled by another process, or a try reaped by another
 * scheduler, is told by that process's stream. The dashboard and metrics consume it (see
 * docs/architecture.md#engine-events).
 */
import { EventEmitter } from 'node:events';
import type { GpuInfo } from './gpus.js';
import type { Logger } from './logger.js';
import { silentLogger } from './logger.js';
import type { RunState } from './states.js';

/** Which try an event is about. */
export interface TryRef {
  dagId: string;
  runId: string;
  taskId: string;
  tryNumber: number;
  /** The worker that ran it (for a try reaped by a scheduler: the worker that lost it, if known). */
  workerId: string | null;
  queue: string | null;
  at: Date;
}

export interface EngineEvents {
  /** A worker claimed a try and starts running it. */
  'task.started': TryRef;
  /** A try ended for good: its task is over (success or failed with no retry left). */
  'task.finished': TryRef & {
    state: 'success' | 'failed';
    /** From the start of the try in this worker to its stored result; null for a try reaped as lost. */
    durationMs: number | null;
    /** The error, secrets masked as in the stored result. */
    error?: string;
  };
  /** A try ended and another try of the task follows (its failure with retries left, or a lost try). */
  'task.retried': TryRef & {
    durationMs: number | null;
    error: string;
    /** Earliest start of the next try. */
    nextTryAt: Date;
    /** Lost with its worker or to a shutdown rather than failed: it does not count against the retries. */
    lost: boolean;
  };
  /** A scheduler started a queued run (its first tasks are queued in the same commit). */
  'run.started': { dagId: string; runId: string; at: Date };
  /** A run ended. */
  'run.ended': {
    dagId: string | null;
    runId: string;
    state: Exclude<RunState, 'queued' | 'running'>;
    at: Date;
  };
  'worker.up': {
    workerId: string;
    hostname: string;
    queues: string[];
    concurrency: number;
    /** The GPUs it lends to tasks (none when it manages none). */
    gpus: GpuInfo[];
    at: Date;
  };
  'worker.down': { workerId: string; hostname: string; queues: string[]; at: Date };
  /** One scheduling pass (starting runs, evaluating those that changed) is over. */
  'scheduler.pass': { durationMs: number; ok: boolean; at: Date };
}

export type EngineEventName = keyof EngineEvents;
export type EngineListener<K extends EngineEventName> = (event: EngineEvents[K]) => void;

/** A typed emitter of EngineEvents (node:events underneath). */
export class EngineEventStream {
  private readonly ee = new EventEmitter();

  constructor(private readonly log: Logger = silentLogger) {
    // A dashboard, metrics and tests may all listen: no leak warning for a handful of listeners.
    this.ee.setMaxListeners(100);
  }

  /** Listens to one event; returns the function that stops listening. */
  on<K extends EngineEventName>(name: K, fn: EngineListener<K>): () => void {
    this.ee.on(name, fn);
    return () => this.ee.off(name, fn);
  }

  /** Listens to every event, in order; returns the function that stops listening. */
  onAny(fn: <K extends EngineEventName>(name: K, event: EngineEvents[K]) => void): () => void {
    const offs = EVENT_NAMES.map((name) => this.on(name, (e) => fn(name, e)));
    return () => offs.forEach((off) => off());
  }

  /** Whether anyone listens to the event (emit checks it before building the payload). */
  listening(name: EngineEventName): boolean {
    return this.ee.listenerCount(name) > 0;
  }

  /** Tells the event's listeners; `payload` may be a function, called only when someone listens. */
  emit<K extends EngineEventName>(name: K, payload: EngineEvents[K] | (() => EngineEvents[K])): void {
    if (this.ee.listenerCount(name) === 0) return;
    const event = typeof payload === 'function' ? payload() : payload;
    // Each listener on its own: one that throws must neither stop the others nor reach the engine.
    for (const fn of this.ee.listeners(name) as Array<EngineListener<K>>) {
      try {
        fn(event);
      } catch (err) {
        this.log.warn({ event: name, err: (err as Error).message }, 'an engine event listener failed');
      }
    }
  }

  /** Events held until a transaction commits: emit() them after the commit, or drop them with it. */
  pending(): PendingEvents {
    return new PendingEvents(this);
  }
}

/** Events of a transaction, told only once it committed. */
export class PendingEvents {
  private readonly held: Array<() => void> = [];

  constructor(private readonly stream: EngineEventStream) {}

  add<K extends EngineEventName>(name: K, payload: () => EngineEvents[K]) {
    if (this.stream.listening(name)) this.held.push(() => this.stream.emit(name, payload));
  }

  /** Call after the commit. */
  emit() {
    for (const e of this.held.splice(0)) e();
  }
}

export const EVENT_NAMES: readonly EngineEventName[] = [
  'task.started',
  'task.finished',
  'task.retried',
  'run.started',
  'run.ended',
  'worker.up',
  'worker.down',
  'scheduler.pass',
];
