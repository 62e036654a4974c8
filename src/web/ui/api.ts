/** Talking to /api/v1: JSON fetches, actions with the CSRF header, and the page's one live stream. */
import { useEffect, useState } from 'preact/hooks';

let csrf: { header: string; token: string } | null = null;

async function session() {
  if (!csrf) {
    const s = await getJson<{ csrfToken: string; csrfHeader: string }>('/api/v1/session');
    csrf = { header: s.csrfHeader, token: s.csrfToken };
  }
  return csrf;
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly field?: string,
  ) {
    super(message);
  }
}

async function handle<T>(r: Response): Promise<T> {
  const body = (await r.json().catch(() => ({}))) as { error?: { message: string; field?: string } };
  if (!r.ok) throw new ApiError(body.error?.message ?? `HTTP ${r.status}`, r.status, body.error?.field);
  return body as T;
}

export async function getJson<T>(url: string): Promise<T> {
  return handle<T>(await fetch(url, { headers: { accept: 'application/json' }, credentials: 'same-origin' }));
}

export async function post<T>(url: string, body: unknown): Promise<T> {
  const s = await session();
  return handle<T>(
    await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', [s.header]: s.token },
      body: JSON.stringify(body),
    }),
  );
}

export const enc = encodeURIComponent;

/** Subscribes to the page's live stream; calls onChange whenever the server says what it shows changed. */
export function useLive(topicQuery: string, onChange: () => void) {
  useEffect(() => {
    const es = new EventSource(`/api/v1/events${topicQuery}`);
    es.addEventListener('change', onChange);
    return () => es.close();
  }, [topicQuery]);
}

/** Data from `url`, fetched again when `tick` (bumped by the page's live stream) or `url` changes. */
export function useData<T>(
  url: string | null,
  tick = 0,
): { data: T | null; error: string | null; reload: () => void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [own, setOwn] = useState(0);
  useEffect(() => {
    if (!url) return;
    let live = true;
    getJson<T>(url)
      .then((d) => live && (setData(d), setError(null)))
      .catch((e: Error) => live && setError(e.message));
    return () => {
      live = false;
    };
  }, [url, tick, own]);
  return { data, error, reload: () => setOwn((t) => t + 1) };
}

/** A counter bumped on every live change of the page's topic: pass it to useData. */
export function useLiveTick(topicQuery = ''): number {
  const [tick, setTick] = useState(0);
  useLive(topicQuery, () => setTick((t) => t + 1));
  return tick;
}
