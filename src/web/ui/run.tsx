/** A run's page: graph coloured by state, Gantt of tries, each task's tries and live logs, and actions. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { enc, getJson, post, useData, useLiveTick } from './api.js';
import { Gantt } from './gantt.js';
import { Graph, type Layout } from './graph.js';
import { Badge, Confirm, ErrorLine, Section, when } from './util.js';

interface Try {
  tryNumber: number;
  state: string;
  workerId: string | null;
  startedAt: string | null;
  endedAt: string | null;
  error: string | null;
}
export interface RunTask {
  taskId: string;
  state: string;
  tryNumber: number;
  queue: string;
  workerId: string | null;
  startedAt: string | null;
  endedAt: string | null;
  output: unknown;
  error: string | null;
  tries: Try[];
  /** A mapped task: its items, counted by state (they are one row here, as in `runs show`). */
  map?: { items: number; counts: Record<string, number> };
}
interface Run {
  runId: string;
  dagId: string;
  state: string;
  runType: string;
  conf: Record<string, unknown>;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  tasks: RunTask[];
  why: Record<string, string | null>;
}

type Action = { label: string; url: string; body: Record<string, unknown> };

export function RunPage({ runId, taskId }: { runId: string; taskId: string | null }) {
  const tick = useLiveTick(`?run=${enc(runId)}`);
  const { data: run, error, reload } = useData<Run>(`/api/v1/runs/${enc(runId)}`, tick);
  const graph = useData<Layout>(`/api/v1/runs/${enc(runId)}/graph`);
  const [action, setAction] = useState<Action | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const select = (id: string | null) => (location.hash = `#/runs/${enc(runId)}${id ? '/' + enc(id) : ''}`);
  const task = run?.tasks.find((t) => t.taskId === taskId) ?? null;
  const states = Object.fromEntries((run?.tasks ?? []).map((t) => [t.taskId, t.state]));
  const doAction = async () => {
    if (!action) return;
    setBusy(true);
    try {
      await post(action.url, { ...action.body, confirm: true });
      setActionError(null);
      reload();
    } catch (e) {
      setActionError((e as Error).message);
    } finally {
      setBusy(false);
      setAction(null);
    }
  };
  const base = `/api/v1/runs/${enc(runId)}`;
  return (
    <div>
      <h1>
        Run {runId} {run && <Badge state={run.state} />}
        {run && ['queued', 'running'].includes(run.state) && (
          <button
            class="danger right"
            data-testid="cancel-run"
            onClick={() =>
              setAction({
                label: `Cancel run ${runId}? Running tasks are stopped.`,
                url: `${base}/cancel`,
                body: {},
              })
            }
          >
            Cancel run
          </button>
        )}
      </h1>
      <ErrorLine error={error ?? actionError} />
      {run && (
        <p class="muted">
          DAG <a href={`#/dags/${enc(run.dagId)}`}>{run.dagId}</a> · {run.runType} · created{' '}
          {when(run.createdAt)} · started {when(run.startedAt)} · ended {when(run.endedAt)} · conf{' '}
          <code>{JSON.stringify(run.conf)}</code>
          {run.error && <span class="error"> · {run.error}</span>}
        </p>
      )}
      <Section title="Graph">
        {graph.data ? (
          <Graph layout={graph.data} states={states} selected={taskId} onSelect={select} />
        ) : (
          <p class="muted">laying out…</p>
        )}
      </Section>
      {task && run && (
        <TaskPanel
          run={run}
          task={task}
          tick={tick}
          onClose={() => select(null)}
          onAction={(a) => setAction({ ...a, url: `${base}/tasks/${enc(task.taskId)}/${a.url}` })}
        />
      )}
      {run && (
        <Section title="Timeline of tries">
          <Gantt tasks={run.tasks} onSelect={select} />
        </Section>
      )}
      {run && (
        <Section title={`Tasks (${run.tasks.length})`}>
          <table class="list" data-testid="run-tasks">
            <thead>
              <tr>
                <th>Task</th>
                <th>State</th>
                <th>Try</th>
                <th>Queue</th>
                <th>Worker</th>
                <th>Started</th>
                <th>Ended</th>
                <th>Why it waits</th>
              </tr>
            </thead>
            <tbody>
              {run.tasks.slice(0, 500).map((t) => (
                <tr
                  key={t.taskId}
                  data-task={t.taskId}
                  data-state={t.state}
                  class={t.taskId === taskId ? 'selected' : ''}
                >
                  <td>
                    <a href={`#/runs/${enc(runId)}/${enc(t.taskId)}`}>{t.taskId}</a>
                  </td>
                  <td>
                    <Badge state={t.state} />
                    {t.map && (
                      <span class="small muted" data-testid="map-items">
                        {' '}
                        {t.map.items} items:{' '}
                        {Object.entries(t.map.counts)
                          .map(([state, n]) => `${n} ${state}`)
                          .join(', ')}
                      </span>
                    )}
                  </td>
                  <td>{t.tryNumber}</td>
                  <td>{t.queue}</td>
                  <td class="small">{t.workerId ?? '—'}</td>
                  <td>{when(t.startedAt)}</td>
                  <td>{when(t.endedAt)}</td>
                  <td class="small muted">{run.why[t.taskId] ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {run.tasks.length > 500 && <p class="muted">The first 500 tasks; the graph shows all.</p>}
        </Section>
      )}
      {action && <Confirm text={action.label} busy={busy} onYes={doAction} onNo={() => setAction(null)} />}
    </div>
  );
}

function TaskPanel(p: {
  run: Run;
  task: RunTask;
  tick: number;
  onClose: () => void;
  onAction: (a: Action) => void;
}) {
  const { task } = p;
  const [lines, setLines] = useState<Array<{ id: number; tryNumber: number; stream: string; line: string }>>(
    [],
  );
  const offset = useRef(0);
  const [logError, setLogError] = useState<string | null>(null);
  const logBox = useRef<HTMLPreElement>(null);
  // A new task: start its log from the beginning.
  useEffect(() => {
    offset.current = 0;
    setLines([]);
  }, [p.run.runId, task.taskId]);
  // Follow: every live change fetches the lines written since the last one seen.
  useEffect(() => {
    let live = true;
    getJson<{ lines: typeof lines; nextOffset: number }>(
      `/api/v1/runs/${enc(p.run.runId)}/tasks/${enc(task.taskId)}/logs?after=${offset.current}`,
    )
      .then((r) => {
        if (!live || r.lines.length === 0) return;
        offset.current = r.nextOffset;
        setLines((old) => [...old, ...r.lines]);
        const box = logBox.current;
        if (box) requestAnimationFrame(() => (box.scrollTop = box.scrollHeight));
      })
      .catch((e: Error) => live && setLogError(e.message));
    return () => {
      live = false;
    };
  }, [p.run.runId, task.taskId, p.tick, task.state, task.tryNumber]);
  const idle = !['queued', 'running'].includes(task.state);
  return (
    <Section title={`Task ${task.taskId}`} right={<button onClick={p.onClose}>×</button>}>
      <div class="task-head">
        <Badge state={task.state} /> try {task.tryNumber} · queue {task.queue} · worker {task.workerId ?? '—'}
        {p.run.why[task.taskId] && <span class="why"> · {p.run.why[task.taskId]}</span>}
        <span class="spacer" />
        <button
          disabled={!idle}
          data-testid="clear-task"
          onClick={() =>
            p.onAction({ label: `Clear ${task.taskId} so that it runs again?`, url: 'clear', body: {} })
          }
        >
          Clear
        </button>
        <button
          disabled={!idle}
          data-testid="clear-downstream"
          onClick={() =>
            p.onAction({
              label: `Clear ${task.taskId} and every task after it?`,
              url: 'clear',
              body: { downstream: true },
            })
          }
        >
          Clear with downstream
        </button>
        <button
          disabled={!['failed', 'upstream_failed'].includes(task.state)}
          data-testid="retry-task"
          onClick={() =>
            p.onAction({
              label: `Mark ${task.taskId} for retry (with the tasks that failed because of it)?`,
              url: 'retry',
              body: {},
            })
          }
        >
          Mark for retry
        </button>
      </div>
      {task.error && <pre class="error-box">{task.error}</pre>}
      {task.output !== null && task.output !== undefined && (
        <div>
          <h3>Output</h3>
          <pre class="output">{JSON.stringify(task.output, null, 2)}</pre>
        </div>
      )}
      <h3>Tries</h3>
      <table class="list">
        <tbody>
          {task.tries.map((t) => (
            <tr key={t.tryNumber}>
              <td>#{t.tryNumber}</td>
              <td>
                <Badge state={t.state} />
              </td>
              <td class="small">{t.workerId}</td>
              <td>{when(t.startedAt)}</td>
              <td>{when(t.endedAt)}</td>
              <td class="small error">{t.error}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Log {task.state === 'running' && <span class="muted">(following)</span>}</h3>
      <ErrorLine error={logError} />
      <pre class="log" ref={logBox} data-testid="task-log">
        {lines.length === 0 ? <span class="muted">no output yet</span> : null}
        {lines.map((l) => (
          <div key={l.id} class={l.stream === 'stderr' ? 'stderr' : ''}>
            <span class="muted">[{l.tryNumber}]</span> {l.line}
          </div>
        ))}
      </pre>
    </Section>
  );
}
