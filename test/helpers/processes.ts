/** Processes of a test's tasks: whether they still run, and the pids they wrote down. Not a test file. */
import { readdir, readFile } from 'node:fs/promises';

/** True while the process exists and is not a zombie (a killed child not yet reaped is gone for our purpose). */
export async function alive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const st = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  return st !== null && !/^\d+ \(.*\) Z /.test(st);
}

/** The pids a task wrote to a file, one per line; fails when the file is missing. */
export async function pidsIn(file: string): Promise<number[]> {
  const text = await readFile(file, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(Number);
}

/** The process hosts (operators/process-host.ts) among a process's children: one at most, while alive. */
export async function hostsOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const t of await readdir(`/proc/${pid}/task`)) {
    const kids = (await readFile(`/proc/${pid}/task/${t}/children`, 'utf8')).split(' ').filter(Boolean);
    for (const k of kids) {
      const cmd = await readFile(`/proc/${k}/cmdline`, 'utf8').catch(() => '');
      if (cmd.split('\0').includes('airtasks-process-host') && (await alive(Number(k)))) out.push(Number(k));
    }
  }
  return out;
}
