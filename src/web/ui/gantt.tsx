/** A timeline of every try of a run's tasks (the first 300 tasks that started), as SVG bars. */
import type { RunTask } from './run.js';
import { STATE_COLORS } from './util.js';

export function Gantt({ tasks, onSelect }: { tasks: RunTask[]; onSelect: (id: string) => void }) {
  const rows = tasks.filter((t) => t.tries.length > 0 || t.startedAt).slice(0, 300);
  if (rows.length === 0) return <p class="muted">No task has started yet.</p>;
  const now = Date.now();
  const t = (s: string | null) => (s ? new Date(s).getTime() : now);
  const bars = rows.flatMap((task, row) => {
    const tries = task.tries.length
      ? task.tries
      : [{ tryNumber: task.tryNumber, state: task.state, startedAt: task.startedAt, endedAt: task.endedAt }];
    return tries
      .filter((x) => x.startedAt)
      .map((x) => ({
        row,
        task: task.taskId,
        n: x.tryNumber,
        state: x.state,
        a: t(x.startedAt),
        b: t(x.endedAt),
      }));
  });
  const min = Math.min(...bars.map((b) => b.a));
  const max = Math.max(...bars.map((b) => b.b), min + 1000);
  const W = 760;
  const L = 200;
  const x = (v: number) => L + ((v - min) / (max - min)) * W;
  const H = rows.length * 18 + 24;
  return (
    <svg width={L + W + 20} height={H} class="gantt" data-testid="gantt">
      {rows.map((task, i) => (
        <text
          key={task.taskId}
          x={4}
          y={i * 18 + 13}
          class="gantt-label"
          onClick={() => onSelect(task.taskId)}
        >
          {task.taskId.length > 28 ? task.taskId.slice(0, 27) + '…' : task.taskId}
        </text>
      ))}
      {bars.map((b) => (
        <rect
          key={`${b.task}/${b.n}`}
          x={x(b.a)}
          y={b.row * 18 + 2}
          width={Math.max(2, x(b.b) - x(b.a))}
          height={14}
          rx={2}
          fill={STATE_COLORS[b.state] ?? '#999'}
          onClick={() => onSelect(b.task)}
        >
          <title>{`${b.task} try ${b.n}: ${b.state}, ${((b.b - b.a) / 1000).toFixed(1)} s`}</title>
        </rect>
      ))}
      <text x={L} y={H - 4} class="gantt-axis">
        {new Date(min).toLocaleTimeString()}
      </text>
      <text x={L + W} y={H - 4} text-anchor="end" class="gantt-axis">
        {new Date(max).toLocaleTimeString()} ({((max - min) / 1000).toFixed(1)} s)
      </text>
    </svg>
  );
}
