/** Small shared pieces: state badges, times, the confirmation dialog. */
import type { ComponentChildren } from 'preact';

export const STATE_COLORS: Record<string, string> = {
  success: '#2e9e4f',
  failed: '#d23b3b',
  running: '#3a7bd5',
  queued: '#8a8f98',
  up_for_retry: '#e6a23c',
  upstream_failed: '#f08c4a',
  skipped: '#c6a0d8',
  cancelled: '#6b4f3a',
  none: '#e4e6ea',
  '': '#f5f6f8',
};

export function Badge({ state }: { state: string }) {
  return (
    <span class="badge" data-state={state} style={{ background: STATE_COLORS[state] ?? '#ccc' }}>
      {state || '—'}
    </span>
  );
}

export function ago(iso: string | null | undefined): string {
  if (!iso) return '—';
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 0) return `in ${fmtDur(-s)}`;
  return `${fmtDur(s)} ago`;
}

export function fmtDur(s: number): string {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? ` ${s % 60}s` : ''}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d`;
}

export function when(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : '—';
}

export function Section({
  title,
  children,
  right,
}: {
  title: string;
  children: ComponentChildren;
  right?: ComponentChildren;
}) {
  return (
    <section class="card">
      <header>
        <h2>{title}</h2>
        {right}
      </header>
      {children}
    </section>
  );
}

/** A modal asking to confirm an action; the API refuses it without `confirm: true` anyway. */
export function Confirm(p: { text: string; onYes: () => void; onNo: () => void; busy?: boolean }) {
  return (
    <div class="modal-back" role="dialog" aria-modal="true">
      <div class="modal">
        <p>{p.text}</p>
        <div class="actions">
          <button class="danger" data-testid="confirm-yes" disabled={p.busy} onClick={p.onYes}>
            Yes, do it
          </button>
          <button onClick={p.onNo}>Cancel</button>
        </div>
      </div>
    </div>
  );
}

export function ErrorLine({ error }: { error: string | null }) {
  return error ? <p class="error">{error}</p> : null;
}
