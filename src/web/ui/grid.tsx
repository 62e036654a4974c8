/**
 * The grid of runs × tasks coloured by state, windowed on the server: 25 runs and 100 tasks at a time,
 * with older/newer runs by cursor and task pages, so 5,000 runs or 10,000 tasks load as fast as 20.
 */
import { useEffect, useState } from 'preact/hooks';
import { enc, useData } from './api.js';
import { STATE_COLORS } from './util.js';

interface GridWindow {
  totalRuns: number;
  totalTasks: number;
  taskOffset: number;
  runs: Array<{ runId: string; state: string; createdAt: string }>;
  tasks: string[];
  cells: string[][];
}

const RUNS = 25;
const TASKS = 100;

export function Grid({ dagId, tick }: { dagId: string; tick: number }) {
  // Cursors of the pages already passed, newest first: "newer" pops one.
  const [cursors, setCursors] = useState<string[]>([]);
  const [taskOffset, setTaskOffset] = useState(0);
  const before = cursors[cursors.length - 1];
  const url =
    `/api/v1/dags/${enc(dagId)}/grid?limit=${RUNS}&taskLimit=${TASKS}&taskOffset=${taskOffset}` +
    (before ? `&before=${enc(before)}` : '');
  const { data, error } = useData<GridWindow>(url, before ? 0 : tick);
  // For the benchmark (bench/b8-dashboard.ts): when the grid was first drawn, since navigation.
  useEffect(() => {
    if (data && performance.getEntriesByName('airtasks:grid-drawn').length === 0)
      performance.mark('airtasks:grid-drawn');
  }, [data]);
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p class="muted">loading…</p>;
  // Oldest on the left, newest on the right, as in Airflow's grid.
  const runs = [...data.runs].reverse();
  const cells = [...data.cells].reverse();
  const last = data.runs[data.runs.length - 1];
  return (
    <div data-testid="grid">
      <div class="pager">
        <button
          disabled={!last || data.runs.length < RUNS}
          onClick={() => last && setCursors([...cursors, last.createdAt])}
        >
          ← older runs
        </button>
        <button disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
          newer runs →
        </button>
        <span class="muted">
          {data.runs.length} of {data.totalRuns} runs
        </span>
        <span class="spacer" />
        <button disabled={taskOffset === 0} onClick={() => setTaskOffset(Math.max(0, taskOffset - TASKS))}>
          ↑ tasks
        </button>
        <button
          disabled={taskOffset + TASKS >= data.totalTasks}
          onClick={() => setTaskOffset(taskOffset + TASKS)}
        >
          ↓ tasks
        </button>
        <span class="muted">
          tasks {data.totalTasks ? taskOffset + 1 : 0}–{Math.min(taskOffset + TASKS, data.totalTasks)} of{' '}
          {data.totalTasks}
        </span>
      </div>
      <div class="grid-scroll">
        <table class="grid">
          <thead>
            <tr>
              <th />
              {runs.map((r) => (
                <th key={r.runId}>
                  <a href={`#/runs/${enc(r.runId)}`} title={`${r.runId}: ${r.state}`}>
                    <span class="cell run" style={{ background: STATE_COLORS[r.state] }} />
                  </a>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {data.tasks.map((t, j) => (
              <tr key={t}>
                <th class="task-name" title={t}>
                  {t}
                </th>
                {runs.map((r, i) => {
                  const s = cells[i]![j]!;
                  return (
                    <td key={r.runId}>
                      <a
                        href={`#/runs/${enc(r.runId)}/${enc(t)}`}
                        title={`${t} in ${r.runId}: ${s || 'not in this run'}`}
                      >
                        <span class="cell" data-state={s} style={{ background: STATE_COLORS[s] }} />
                      </a>
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
