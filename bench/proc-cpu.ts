/**
 * CPU time of a machine's processes by name, from /proc (Linux): B7 reads Postgres's CPU this way, since
 * Postgres runs on the benchmark's machine and its own statistics do not count CPU time.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ): 100 on every Linux architecture in use. */
export const TICKS_PER_SECOND = 100;

export interface ProcStat {
  pid: number;
  /** The executable's name, at most 15 characters (a process's own title is not here). */
  comm: string;
  /**
   * utime + stime + cutime + cstime, in ticks: its own CPU time and that of children it has reaped, so
   * a Postgres backend that exits during a measurement still counts, in the postmaster's figure.
   */
  ticks: number;
}

/** Parses one /proc/<pid>/stat line; null when it is not one. The name may hold spaces and parentheses. */
export function parseStat(line: string): ProcStat | null {
  const open = line.indexOf('(');
  const close = line.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const pid = Number(line.slice(0, open).trim());
  // Fields after the name, numbered from 3 (state) as in proc(5): utime..cstime are 14..17.
  const rest = line
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const times = rest.slice(11, 15).map(Number);
  if (!Number.isInteger(pid) || times.length < 4 || times.some((t) => !Number.isFinite(t))) return null;
  return { pid, comm: line.slice(open + 1, close), ticks: times.reduce((a, b) => a + b, 0) };
}

/** CPU milliseconds used so far by every process named `comm`, children they reaped included. */
export function cpuMsOf(comm: string, proc = '/proc'): number {
  let ticks = 0;
  for (const name of readdirSync(proc)) {
    if (!/^\d+$/.test(name)) continue;
    const s = statOf(`${proc}/${name}/stat`);
    if (s?.comm === comm) ticks += s.ticks;
  }
  return (ticks * 1000) / TICKS_PER_SECOND;
}

/** CPU milliseconds used so far by the processes, children they reaped included (one gone counts 0). */
export function cpuMsOfPids(pids: number[], proc = '/proc'): number {
  const ticks = pids.reduce((sum, pid) => sum + (statOf(`${proc}/${pid}/stat`)?.ticks ?? 0), 0);
  return (ticks * 1000) / TICKS_PER_SECOND;
}

function statOf(file: string): ProcStat | null {
  try {
    return parseStat(readFileSync(file, 'utf8'));
  } catch {
    return null; // exited since the listing
  }
}
