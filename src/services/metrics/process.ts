/**
 * What a scheduler or worker process adds to its own metrics: its workers' slots and GPUs (read on a
 * scrape), and the database and broker errors it logs. The engine logs each such error where it recovers
 * from it (a lost connection, a failed publish kept in the outbox); counting those log records, by the
 * documented messages below, needs no hook in the engine's connection code.
 */
import type { Logger } from '../../core/logger.js';
import type { GpuAllocator } from '../../engine/worker/gpus.js';
import type { AirtasksMetrics, WorkerSource } from './registry.js';

/** The engine's log messages of database and broker errors, and the series each counts in. */
export const ERROR_MESSAGES: Readonly<Record<string, { service: 'database' | 'broker'; error: string }>> = {
  'idle database connection lost': { service: 'database', error: 'connection lost' },
  'database connection lost in a transaction': { service: 'database', error: 'connection lost' },
  'LISTEN connection lost; reconnecting': { service: 'database', error: 'listen connection lost' },
  'queue fetch failed; will retry': { service: 'database', error: 'queue fetch failed' },
  'lease extension failed': { service: 'database', error: 'lease extension failed' },
  'zombie check failed': { service: 'database', error: 'zombie check failed' },
  'heartbeat failed': { service: 'database', error: 'heartbeat failed' },
  'storing the result failed; retrying': { service: 'database', error: 'storing a result failed' },
  'claim failed; message released': { service: 'database', error: 'claim failed' },
  'claiming the next task failed': { service: 'database', error: 'claim failed' },
  'scheduling pass failed; retrying': { service: 'database', error: 'scheduling pass failed' },
  'schedule pass failed': { service: 'database', error: 'scheduled runs pass failed' },
  'retry check failed': { service: 'database', error: 'retry check failed' },
  'run timeout check failed': { service: 'database', error: 'run timeout check failed' },
  'outbox sweep failed': { service: 'database', error: 'outbox sweep failed' },
  'lost-message check failed': { service: 'database', error: 'lost-message check failed' },
  'broker connection lost; reconnecting': { service: 'broker', error: 'connection lost' },
  'broker connection error': { service: 'broker', error: 'connection error' },
  'consumer channel error': { service: 'broker', error: 'channel error' },
  'consumer channel closed; consuming again': { service: 'broker', error: 'channel closed' },
  'restarting a consumer failed': { service: 'broker', error: 'consumer restart failed' },
  'publish failed; the outbox keeps them': { service: 'broker', error: 'publish failed' },
};

const COUNTED_LEVELS = new Set(['warn', 'error', 'fatal']);

/**
 * The logger, counting the database and broker errors logged through it (and its children) in
 * airtasks_errors_total; everything else passes through unchanged.
 */
export function countingErrors(log: Logger, m: AirtasksMetrics): Logger {
  return new Proxy(log, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (prop === 'child' && typeof value === 'function')
        return (...args: unknown[]) =>
          countingErrors((value as (...a: unknown[]) => Logger).apply(target, args), m);
      if (typeof prop === 'string' && COUNTED_LEVELS.has(prop) && typeof value === 'function')
        return (...args: unknown[]) => {
          const msg = typeof args[0] === 'string' ? args[0] : args[1];
          const e = typeof msg === 'string' ? ERROR_MESSAGES[msg] : undefined;
          if (e) m.errors.inc(e);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      return value;
    },
  });
}

/** Adds a worker of this process to the slot and GPU gauges; returns the function that removes it. */
export function addWorkerSource(
  m: AirtasksMetrics,
  w: { readonly id: string; readonly busy: number },
  concurrency: number,
  gpus: GpuAllocator | undefined,
): () => void {
  const source: WorkerSource = {
    cluster: false,
    read: () => {
      const s = gpus?.snapshot();
      return [
        {
          workerId: w.id,
          busy: w.busy,
          slots: concurrency,
          gpusTotal: s?.devices.length ?? 0,
          gpusHeld: s?.held.reduce((n, h) => n + h.ids.length, 0) ?? 0,
          gpuWaiting: s?.waiting.length ?? 0,
        },
      ];
    },
  };
  m.workerSources.add(source);
  return () => m.workerSources.delete(source);
}
