/**
 * The per-queue node-group hook: a shell command run with the number of machines a queue's workers
 * need (e.g. a cloud CLI resizing the instance group whose nodes carry the queue's label). It gets
 * the count as $1 and in AIRTASKS_DESIRED_NODES, the queue in AIRTASKS_QUEUE. A failure or a
 * timeout is reported, never thrown: machines are best effort, the workers' size is not.
 */
import { execa } from 'execa';

export interface HookResult {
  ok: boolean;
  exitCode: number | null;
  /** The last lines of its output (stdout and stderr), for the log. */
  output: string;
  error: string | null;
}

export const DEFAULT_HOOK_TIMEOUT_MS = 120_000;

export async function runNodeGroupHook(
  command: string,
  o: { queue: string; desiredNodes: number; timeoutMs?: number; env?: NodeJS.ProcessEnv },
): Promise<HookResult> {
  const timeoutMs = o.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
  // Its own process group, so a timeout stops the whole tree (a cloud CLI and what it started).
  const child = execa('sh', ['-c', command, 'airtasks-node-group-hook', String(o.desiredNodes)], {
    env: { ...o.env, AIRTASKS_QUEUE: o.queue, AIRTASKS_DESIRED_NODES: String(o.desiredNodes) },
    detached: true,
    stdin: 'ignore',
    all: true,
    reject: false,
  });
  let timedOut = false;
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  let forceTimer: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup('SIGTERM');
    forceTimer = setTimeout(() => killGroup('SIGKILL'), 5000);
  }, timeoutMs);
  const r = await child;
  clearTimeout(timer);
  clearTimeout(forceTimer);
  const output = (r.all ?? '').split('\n').slice(-20).join('\n').trim();
  if (timedOut) return { ok: false, exitCode: null, output, error: `timed out after ${timeoutMs / 1000}s` };
  if (r.failed)
    return {
      ok: false,
      exitCode: r.exitCode ?? null,
      output,
      error: r.exitCode !== undefined ? `exited with code ${r.exitCode}` : (r.shortMessage ?? 'failed'),
    };
  return { ok: true, exitCode: 0, output, error: null };
}
