/** The DAGs page: every DAG with its recent runs, schedule, next run, pause toggle; import errors in full. */
import { useState } from 'preact/hooks';
import { enc, post, useData, useLiveTick } from './api.js';
import { TriggerForm } from './trigger.js';
import { ago, Badge, ErrorLine, Section } from './util.js';

interface DagRow {
  dagId: string;
  paused: boolean;
  schedule: string | null;
  nextRunAt: string | null;
  fileloc: string;
  tasks: number;
  recentRuns: Array<{ runId: string; state: string }>;
}
interface Overview {
  dags: DagRow[];
  importErrors: Array<{ fileloc: string; message: string; occurredAt: string }>;
}

export function DagsPage() {
  const tick = useLiveTick();
  const { data, error, reload } = useData<Overview>('/api/v1/dags', tick);
  const [triggering, setTriggering] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const toggle = async (d: DagRow) => {
    try {
      await post(`/api/v1/dags/${enc(d.dagId)}/pause`, { paused: !d.paused });
      reload();
    } catch (e) {
      setActionError((e as Error).message);
    }
  };
  return (
    <div>
      <ErrorLine error={error ?? actionError} />
      {data && data.importErrors.length > 0 && (
        <Section title={`Import errors (${data.importErrors.length})`}>
          {data.importErrors.map((e) => (
            <div class="import-error" key={e.fileloc}>
              <b>{e.fileloc}</b> <span class="muted">{ago(e.occurredAt)}</span>
              <pre>{e.message}</pre>
            </div>
          ))}
        </Section>
      )}
      <Section title="DAGs">
        <table class="list" data-testid="dags-table">
          <thead>
            <tr>
              <th>Active</th>
              <th>DAG</th>
              <th>Recent runs</th>
              <th>Schedule</th>
              <th>Next run</th>
              <th>Tasks</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {data?.dags.map((d) => (
              <tr key={d.dagId} data-dag={d.dagId}>
                <td>
                  <label
                    class="switch"
                    title={d.paused ? 'Paused: click to unpause' : 'Active: click to pause'}
                  >
                    <input type="checkbox" checked={!d.paused} onChange={() => toggle(d)} />
                    <span>{d.paused ? 'paused' : 'on'}</span>
                  </label>
                </td>
                <td>
                  <a href={`#/dags/${enc(d.dagId)}`}>{d.dagId}</a>
                  <div class="muted small">{d.fileloc}</div>
                </td>
                <td class="dots">
                  {d.recentRuns.length === 0 && <span class="muted">none yet</span>}
                  {d.recentRuns.map((r) => (
                    <a key={r.runId} href={`#/runs/${enc(r.runId)}`} title={`${r.runId}: ${r.state}`}>
                      <Badge state={r.state} />
                    </a>
                  ))}
                </td>
                <td>{d.schedule ?? <span class="muted">manual</span>}</td>
                <td>{d.nextRunAt ? ago(d.nextRunAt) : '—'}</td>
                <td>{d.tasks}</td>
                <td>
                  <button data-testid={`trigger-${d.dagId}`} onClick={() => setTriggering(d.dagId)}>
                    Trigger…
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {data && data.dags.length === 0 && (
          <p class="muted">No DAGs yet: is a scheduler running on the dags folder?</p>
        )}
      </Section>
      {triggering && <TriggerForm dagId={triggering} onClose={() => setTriggering(null)} />}
    </div>
  );
}
