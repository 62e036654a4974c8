/** Processes of a test's tasks: whether they still run, and the pids they wrote down. Not a test file. */
import { readFile } from 'node:fs/promises';

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
