/** Waiting between attempts: a sleep that an abort ends early, and capped exponential backoff. */

/** Resolves after `ms`, or as soon as `signal` aborts (it never rejects). `unref`: do not keep Node alive. */
export function sleep(ms: number, signal?: AbortSignal, opts: { unref?: boolean } = {}): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    if (opts.unref) t.unref();
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** The delay before retry number `attempt` (0 first): `baseMs` doubled each time, at most `maxMs`. */
export function backoffMs(attempt: number, baseMs: number, maxMs = 5000): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt, 0), 30));
}
