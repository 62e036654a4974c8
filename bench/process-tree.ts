/**
 * The memory of a process and all its descendants (a worker, its process host, the commands the host
 * started), read from /proc. Two sums: RSS, what `ps` and most dashboards show, which counts a page shared
 * by several processes (Node's code, mapped once and used by the worker and its host) in each of them; and
 * PSS, which shares such a page out among them, so the tree's shared pages are counted once. A container's
 * memory limit sees neither exactly; both are given.
 *
 * Sampled by the harness, not by the measured processes, so that the sampling costs them nothing.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface TreeMemory {
  rssMiB: number;
  pssMiB: number;
  /** How many processes the tree has (threads are not processes: their memory is their process's). */
  processes: number;
}

function read(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    // The process ended between listing and reading.
    return null;
  }
}

/** Parent of every process now running, from /proc/<pid>/stat (the name, in parentheses, may hold spaces). */
function parents(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = read(`/proc/${name}/stat`);
    if (!stat) continue;
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    let c = children.get(ppid);
    if (!c) children.set(ppid, (c = []));
    c.push(Number(name));
  }
  return children;
}

/** The process and its descendants, the process first. */
export function processTree(pid: number): number[] {
  const children = parents();
  const out: number[] = [];
  const todo = [pid];
  while (todo.length > 0) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

/** RSS and PSS in KiB from /proc/<pid>/smaps_rollup; null when the process is gone. */
function memoryKiB(pid: number): { rss: number; pss: number } | null {
  const text = read(`/proc/${pid}/smaps_rollup`);
  const rss = text && /^Rss:\s+(\d+) kB/m.exec(text);
  const pss = text && /^Pss:\s+(\d+) kB/m.exec(text);
  return rss && pss ? { rss: Number(rss[1]), pss: Number(pss[1]) } : null;
}

/** The tree's memory now. A process that ends while it is read is left out. */
export function treeMemory(pid: number): TreeMemory {
  let rss = 0;
  let pss = 0;
  let processes = 0;
  for (const p of processTree(pid)) {
    const m = memoryKiB(p);
    if (!m) continue;
    rss += m.rss;
    pss += m.pss;
    processes++;
  }
  return { rssMiB: rss / 1024, pssMiB: pss / 1024, processes };
}

/** The peaks of a tree's memory, sampled every `intervalMs` until stopped. */
export class TreePeak {
  readonly peak: TreeMemory = { rssMiB: 0, pssMiB: 0, processes: 0 };
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    intervalMs = 100,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  /** Takes a sample now (also before the peaks are read, so that a short run has one). */
  sample(): TreeMemory {
    const now = treeMemory(this.pid);
    this.peak.rssMiB = Math.max(this.peak.rssMiB, now.rssMiB);
    this.peak.pssMiB = Math.max(this.peak.pssMiB, now.pssMiB);
    this.peak.processes = Math.max(this.peak.processes, now.processes);
    return now;
  }

  stop() {
    clearInterval(this.timer);
  }
}
