/** Task log lines. */
import type { Queryable } from './db.js';

export interface LogLine {
  runId: string;
  taskId: string;
  tryNumber: number;
  stream: 'stdout' | 'stderr' | 'system';
  ts: Date;
  line: string;
}

export interface LogRow {
  id: number;
  try_number: number;
  stream: string;
  ts: Date;
  line: string;
}

export async function appendLogs(q: Queryable, lines: LogLine[]) {
  if (lines.length === 0) return;
  await q.query(
    `INSERT INTO task_logs (run_id, task_id, try_number, stream, ts, line)
     SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::timestamptz[], $6::text[])`,
    logColumns(lines),
  );
}

/** Lines as the six arrays an unnest() insert into task_logs takes (also used by the try's result). */
export function logColumns(lines: LogLine[]): unknown[] {
  return [
    lines.map((l) => l.runId),
    lines.map((l) => l.taskId),
    lines.map((l) => l.tryNumber),
    lines.map((l) => l.stream),
    lines.map((l) => l.ts),
    // Postgres text cannot hold NUL bytes.
    lines.map((l) => l.line.replaceAll('\u0000', '\\0')),
  ];
}

export async function readLogs(
  q: Queryable,
  runId: string,
  taskId: string,
  opts: { tryNumber?: number; afterId?: number; limit?: number } = {},
): Promise<LogRow[]> {
  return (
    await q.query<LogRow>(
      `SELECT id, try_number, stream, ts, line FROM task_logs
       WHERE run_id = $1 AND task_id = $2 AND ($3::int IS NULL OR try_number = $3) AND id > $4
       ORDER BY try_number, id LIMIT $5`,
      [runId, taskId, opts.tryNumber ?? null, opts.afterId ?? 0, opts.limit ?? 100_000],
    )
  ).rows;
}
