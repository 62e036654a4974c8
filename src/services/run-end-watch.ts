/**
 * Waiting for runs to move: a LISTEN on the engine's events channel that wakes a waiter early when one of
 * the runs it watches changes, with a poll as the floor (a NOTIFY can be missed while reconnecting).
 */
import type { Db } from '../engine/store/db.js';

export interface RunWatch {
  /** Sleeps up to `ms`, or less when a watched run changes meanwhile. */
  nap(ms: number): Promise<void>;
  close(): Promise<void>;
}

/** Watches the runs `watched` accepts (given a run id); listening has started when it resolves. */
export async function watchRuns(db: Db, watched: (runId: string) => boolean): Promise<RunWatch> {
  let wake: (() => void) | null = null;
  const listener = db.listen([db.channel('events')], (_ch, payload) => {
    if (watched(payload.replace(/^run:/, ''))) wake?.();
  });
  await listener.ready.catch(() => undefined);
  return {
    nap: (ms) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(done, ms);
        function done() {
          clearTimeout(t);
          wake = null;
          resolve();
        }
        wake = done;
      }),
    close: () => listener.close(),
  };
}
