/** A DAG's page: its graph, the selected task's details, its versions and the grid of runs × tasks. */
import { useState } from 'preact/hooks';
import { enc, useData, useLiveTick } from './api.js';
import { Graph, type Layout } from './graph.js';
import { Grid } from './grid.js';
import { TriggerForm } from './trigger.js';
import { ErrorLine, Section, when } from './util.js';

interface DagDetails {
  dagId: string;
  hash: string;
  description?: string;
  schedule?: string | null;
  paused: boolean;
  nextRunAt: string | null;
  taskCount: number;
  tasks?: Array<
    Record<string, unknown> & { taskId: string; upstream: string[]; operator: string; queue: string }
  >;
  versions: Array<{ hash: string; createdAt: string; tasks: number; runs: number }>;
}

export function DagPage({ dagId }: { dagId: string }) {
  const tick = useLiveTick();
  // Without its tasks (a 10,000-task DAG is megabytes); the selected task is asked for alone.
  const { data, error } = useData<DagDetails>(`/api/v1/dags/${enc(dagId)}?tasks=0`, tick);
  const graph = useData<Layout & { hash: string }>(`/api/v1/dags/${enc(dagId)}/graph`);
  const [selected, setSelected] = useState<string | null>(null);
  const one = useData<DagDetails>(selected ? `/api/v1/dags/${enc(dagId)}?task=${enc(selected)}` : null);
  const [triggering, setTriggering] = useState(false);
  const task = one.data?.tasks?.find((t) => t.taskId === selected);
  return (
    <div>
      <h1>
        {dagId}{' '}
        {data?.paused && (
          <span class="badge" style={{ background: '#8a8f98' }}>
            paused
          </span>
        )}
        <button class="primary right" onClick={() => setTriggering(true)}>
          Trigger…
        </button>
      </h1>
      <ErrorLine error={error ?? graph.error} />
      {data && (
        <p class="muted">
          {data.description} · schedule: {data.schedule ?? 'manual'} · next run: {when(data.nextRunAt)} ·{' '}
          {data.taskCount} tasks · version <code>{data.hash.slice(0, 12)}</code>
        </p>
      )}
      <Section title="Graph">
        {graph.data ? (
          <Graph layout={graph.data} selected={selected} onSelect={setSelected} />
        ) : (
          <p class="muted">laying out…</p>
        )}
      </Section>
      {task && (
        <Section title={`Task ${task.taskId}`} right={<button onClick={() => setSelected(null)}>×</button>}>
          <table class="kv">
            <tbody>
              {Object.entries(task).map(([k, v]) => (
                <tr key={k}>
                  <th>{k}</th>
                  <td>
                    <code>{typeof v === 'string' ? v : JSON.stringify(v)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      )}
      <Section title="Runs × tasks">
        <Grid dagId={dagId} tick={tick} />
      </Section>
      {data && (
        <Section title="Versions">
          <table class="list">
            <thead>
              <tr>
                <th>Hash</th>
                <th>Stored</th>
                <th>Tasks</th>
                <th>Runs</th>
              </tr>
            </thead>
            <tbody>
              {data.versions.map((v) => (
                <tr key={v.hash}>
                  <td>
                    <code>{v.hash.slice(0, 16)}</code> {v.hash === data.hash && <b>current</b>}
                  </td>
                  <td>{when(v.createdAt)}</td>
                  <td>{v.tasks}</td>
                  <td>{v.runs}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      )}
      {triggering && <TriggerForm dagId={dagId} onClose={() => setTriggering(false)} />}
    </div>
  );
}
