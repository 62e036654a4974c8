/** The swarm page's "Last decisions": what the autoscaler recorded (GET /api/v1/swarm, decisions). */
import { ago, fmtDur, Section } from './util.js';

export interface Decision {
  id: number;
  at: string;
  queue: string;
  service: string;
  action: string;
  current: number | null;
  wanted: number | null;
  target: number | null;
  scaled: boolean;
  inputs: Record<string, number | null | undefined>;
  nodes: { desired: number; hook: string; error: string | null } | null;
  reason: string;
  error: string | null;
}

const n = (v: number | null | undefined) => (v === null || v === undefined ? '?' : v);
const secs = (ms: number | null | undefined) =>
  typeof ms === 'number' ? fmtDur(Math.ceil(ms / 1000)) : null;

/** ready 7 · unacked ? · running 2 → backlog 9 · ×2 per worker · 1..4 · cooldown 2m (45s left) */
export function compactInputs(i: Decision['inputs']): string {
  const parts = [
    `ready ${n(i.ready)}`,
    `unacked ${n(i.unacked)}`,
    `running ${n(i.running)}`,
    `backlog ${n(i.backlog)}`,
    `×${n(i.concurrency)} per worker`,
    `${n(i.min)}..${n(i.max)}`,
  ];
  const cooldown = secs(i.cooldownMs);
  const left = secs(i.cooldownLeftMs);
  if (cooldown) parts.push(`cooldown ${cooldown}${left ? ` (${left} left)` : ''}`);
  return parts.join(' · ');
}

export function LastDecisions(p: { decisions: Decision[]; error: string | null }) {
  return (
    <Section title="Last decisions (recorded by the autoscaler)">
      {p.error && <p class="muted">{p.error}</p>}
      {!p.error && p.decisions.length === 0 && (
        <p class="muted">None recorded yet (a dry run records nothing).</p>
      )}
      {p.decisions.length > 0 && (
        <table class="list" data-testid="autoscaler-decisions">
          <thead>
            <tr>
              <th>When</th>
              <th>Queue</th>
              <th>Action</th>
              <th>Replicas</th>
              <th>Inputs</th>
              <th>Error</th>
            </tr>
          </thead>
          <tbody>
            {p.decisions.map((d) => (
              <tr key={d.id} data-action={d.action} title={d.reason}>
                <td title={new Date(d.at).toLocaleString()}>{ago(d.at)}</td>
                <td>{d.queue}</td>
                <td>
                  {d.action}
                  {d.scaled ? ' ✓' : ''}
                </td>
                <td>
                  {n(d.current)} → {n(d.target)}
                  {d.nodes ? <span class="small muted"> ({d.nodes.desired} node(s))</span> : null}
                </td>
                <td class="small">{compactInputs(d.inputs)}</td>
                <td class="small">{d.error ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}
