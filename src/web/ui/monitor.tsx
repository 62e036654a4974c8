/** Workers and queues (what Flower showed), the swarm (what the visualizer showed), variables and pools. */
import { enc, useData, useLiveTick } from './api.js';
import { LastDecisions, type Decision } from './swarm-decisions.js';
import { ago, ErrorLine, Section } from './util.js';
import { WorkerGpus, type WorkerGpu } from './worker-gpus.js';

interface Worker {
  workerId: string;
  hostname: string;
  pid: number;
  queues: string[];
  concurrency: number;
  busy: number;
  free: number;
  heartbeatAt: string;
  startedAt: string;
  tasks: Array<{ runId: string; taskId: string; tryNumber: number; startedAt: string | null }>;
  gpus: WorkerGpu[];
}
interface Queue {
  queue: string;
  ready: number | null;
  unacked: number | null;
  consumers: number | null;
  queuedTasks: number;
  runningTasks: number;
  workers: string[];
  warning: string | null;
}

const n = (v: number | null) => (v === null ? '?' : v);

export function WorkersPage() {
  const tick = useLiveTick();
  const w = useData<Worker[]>('/api/v1/workers', tick);
  const q = useData<{ queues: Queue[]; brokerError: string | null }>('/api/v1/queues', tick);
  return (
    <div>
      <ErrorLine error={w.error ?? q.error} />
      <Section title="Queues">
        {q.data?.brokerError && <p class="error">Broker: {q.data.brokerError}</p>}
        {q.data?.queues
          .filter((x) => x.warning)
          .map((x) => (
            <p class="warning" key={x.queue} data-testid="queue-warning">
              ⚠ {x.warning}
            </p>
          ))}
        <table class="list" data-testid="queues-table">
          <thead>
            <tr>
              <th>Queue</th>
              <th>Ready</th>
              <th>Unacked</th>
              <th>Consumers</th>
              <th>Queued tasks</th>
              <th>Running</th>
              <th>Workers</th>
            </tr>
          </thead>
          <tbody>
            {q.data?.queues.map((x) => (
              <tr key={x.queue} class={x.warning ? 'warn-row' : ''}>
                <td>{x.queue}</td>
                <td>{n(x.ready)}</td>
                <td>{n(x.unacked)}</td>
                <td>{n(x.consumers)}</td>
                <td>{x.queuedTasks}</td>
                <td>{x.runningTasks}</td>
                <td class="small">{x.workers.join(', ') || '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title={`Workers (${w.data?.length ?? 0})`}>
        <table class="list" data-testid="workers-table">
          <thead>
            <tr>
              <th>Worker</th>
              <th>Host</th>
              <th>Queues</th>
              <th>Slots busy / free</th>
              <th>Heartbeat</th>
              <th>Running now</th>
              <th>GPUs</th>
            </tr>
          </thead>
          <tbody>
            {w.data?.map((x) => (
              <tr key={x.workerId}>
                <td class="small">
                  {x.workerId}
                  <div class="muted">
                    pid {x.pid}, up since {ago(x.startedAt)}
                  </div>
                </td>
                <td>{x.hostname}</td>
                <td>{x.queues.join(', ')}</td>
                <td>
                  <div class="slots" title={`${x.busy} busy, ${x.free} free`}>
                    {Array.from({ length: Math.min(x.concurrency, 64) }, (_, i) => (
                      <span key={i} class={i < x.busy ? 'slot busy' : 'slot'} />
                    ))}
                  </div>
                  {x.busy} / {x.free}
                </td>
                <td>{ago(x.heartbeatAt)}</td>
                <td class="small">
                  {x.tasks.map((t) => (
                    <div key={t.runId + t.taskId}>
                      <a href={`#/runs/${enc(t.runId)}/${enc(t.taskId)}`}>
                        {t.taskId}{' '}
                        <span class="muted">
                          ({t.runId}, try {t.tryNumber})
                        </span>
                      </a>
                    </div>
                  ))}
                </td>
                <td class="small">
                  <WorkerGpus gpus={x.gpus} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {w.data?.length === 0 && <p class="muted">No live worker (none heartbeated in the last minute).</p>}
      </Section>
    </div>
  );
}

interface Swarm {
  unavailable: string | null;
  stack: string;
  nodes: Array<{
    id: string;
    hostname: string;
    role: string;
    availability: string;
    state: string;
    labels: Record<string, string>;
    queues: string[];
  }>;
  services: Array<{ name: string; image: string; mode: string; running: number; desired: number }>;
  autoscaler: {
    at: string;
    queues: Array<{
      queue: string;
      service: string;
      action: string;
      current: number | null;
      target: number | null;
      inputs: unknown;
      reason: string;
      error: string | null;
    }>;
  } | null;
  autoscalerError: string | null;
  decisions: Decision[];
  decisionsError: string | null;
}

export function SwarmPage() {
  const { data, error } = useData<Swarm>('/api/v1/swarm');
  if (error) return <ErrorLine error={error} />;
  if (!data) return <p class="muted">reading the swarm…</p>;
  const decisions = <LastDecisions decisions={data.decisions} error={data.decisionsError} />;
  if (data.unavailable)
    return (
      <div>
        <Section title="Swarm">
          <p class="muted" data-testid="swarm-unavailable">
            No swarm to show here: {data.unavailable}
          </p>
        </Section>
        {decisions}
      </div>
    );
  return (
    <div>
      <Section title={`Nodes (${data.nodes.length})`}>
        <div class="nodes">
          {data.nodes.map((nd) => (
            <div class="node-card" key={nd.id}>
              <b>{nd.hostname}</b> <span class="muted">{nd.role}</span>
              <div>
                {nd.state} · {nd.availability}
              </div>
              <div class="small">queues: {nd.queues.join(', ') || '—'}</div>
              <div class="small muted">
                {Object.entries(nd.labels)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(' ')}
              </div>
            </div>
          ))}
        </div>
      </Section>
      <Section title={`Services of stack ${data.stack}`}>
        <table class="list">
          <thead>
            <tr>
              <th>Service</th>
              <th>Mode</th>
              <th>Replicas</th>
              <th>Image</th>
            </tr>
          </thead>
          <tbody>
            {data.services.map((s) => (
              <tr key={s.name}>
                <td>{s.name}</td>
                <td>{s.mode}</td>
                <td>
                  {s.running}/{s.desired}
                </td>
                <td class="small">{s.image}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {data.services.length === 0 && <p class="muted">The stack is not deployed.</p>}
      </Section>
      <Section title="Autoscaler (its decision now, from these inputs)">
        {data.autoscalerError && <p class="muted">{data.autoscalerError}</p>}
        {data.autoscaler && (
          <table class="list">
            <thead>
              <tr>
                <th>Queue</th>
                <th>Service</th>
                <th>Action</th>
                <th>Replicas</th>
                <th>Inputs</th>
                <th>Reason</th>
              </tr>
            </thead>
            <tbody>
              {data.autoscaler.queues.map((q) => (
                <tr key={q.queue}>
                  <td>{q.queue}</td>
                  <td>{q.service}</td>
                  <td>{q.action}</td>
                  <td>
                    {n(q.current)} → {n(q.target)}
                  </td>
                  <td class="small">
                    <code>{JSON.stringify(q.inputs)}</code>
                  </td>
                  <td class="small">{q.error ?? q.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      {decisions}
    </div>
  );
}

export function VariablesPage() {
  const tick = useLiveTick();
  const v = useData<Array<{ key: string; value: string; secret: boolean; description: string }>>(
    '/api/v1/variables',
    tick,
  );
  const p = useData<
    Array<{
      name: string;
      slots: number;
      running: number;
      queued: number;
      open: number;
      waiting: number;
      description: string;
    }>
  >('/api/v1/pools', tick);
  return (
    <div>
      <ErrorLine error={v.error ?? p.error} />
      <Section title="Pools">
        <table class="list">
          <thead>
            <tr>
              <th>Pool</th>
              <th>Slots</th>
              <th>Running</th>
              <th>Queued</th>
              <th>Open</th>
              <th>Waiting</th>
              <th>Description</th>
            </tr>
          </thead>
          <tbody>
            {p.data?.map((x) => (
              <tr key={x.name}>
                <td>{x.name}</td>
                <td>{x.slots}</td>
                <td>{x.running}</td>
                <td>{x.queued}</td>
                <td>{x.open}</td>
                <td>{x.waiting}</td>
                <td>{x.description}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {p.data?.length === 0 && <p class="muted">No pools.</p>}
      </Section>
      <Section title="Variables">
        <table class="list" data-testid="variables-table">
          <thead>
            <tr>
              <th>Key</th>
              <th>Value</th>
              <th>Description</th>
            </tr>
          </thead>
          <tbody>
            {v.data?.map((x) => (
              <tr key={x.key}>
                <td>
                  {x.key}{' '}
                  {x.secret && (
                    <span class="badge" style={{ background: '#6b4f3a' }}>
                      secret
                    </span>
                  )}
                </td>
                <td>
                  <code>{x.value}</code>
                </td>
                <td>{x.description}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {v.data?.length === 0 && <p class="muted">No variables.</p>}
      </Section>
    </div>
  );
}
