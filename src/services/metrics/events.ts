/** The engine's events (core/events.ts) as counters and histograms: tries, their durations, runs, passes. */
import type { EngineEventStream } from '../../core/events.js';
import type { AirtasksMetrics } from './registry.js';

/** Feeds the metrics from the stream; returns the function that stops it. */
export function countEngineEvents(events: EngineEventStream, m: AirtasksMetrics): () => void {
  const offs = [
    events.on('task.started', (e) => m.triesStarted.inc({ dag_id: e.dagId, queue: e.queue ?? '' })),
    events.on('task.finished', (e) => {
      m.triesTotal.inc({ dag_id: e.dagId, task_id: e.taskId, state: e.state });
      if (e.durationMs !== null)
        m.tryDuration.observe({ dag_id: e.dagId, state: e.state }, e.durationMs / 1000);
    }),
    events.on('task.retried', (e) => {
      const state = e.lost ? 'lost' : 'retried';
      m.triesTotal.inc({ dag_id: e.dagId, task_id: e.taskId, state });
      if (e.durationMs !== null) m.tryDuration.observe({ dag_id: e.dagId, state }, e.durationMs / 1000);
    }),
    events.on('run.ended', (e) => m.runsEnded.inc({ dag_id: e.dagId ?? '', state: e.state })),
    events.on('scheduler.pass', (e) =>
      m.schedulerPass.observe({ result: e.ok ? 'ok' : 'error' }, e.durationMs / 1000),
    ),
  ];
  return () => offs.forEach((off) => off());
}
