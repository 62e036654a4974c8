/**
 * How the worker starts its process host (process-host.ts): forked with the worker's scrubbed environment,
 * as the task user when there is one, in its own process group, with heap and malloc settings of its own.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { HOST_MALLOC_ENV } from './process-host-protocol.js';
import type { TaskUser } from './task-user.js';

const HOST = fileURLToPath(new URL('./process-host-child.js', import.meta.url));
/**
 * The host's heap, for each of its isolates (its own, its threads', their loaders'), whatever the worker was
 * started with: a small young generation (their garbage is mostly short-lived call messages, and each would
 * otherwise grow its own to 16 MiB and more under a burst of calls), and an old generation that grows by 20%
 * past what the last full collection kept, not by V8's default factor of up to 4 (a thread keeps the DAG
 * files it has imported, and importing one of thousands of tasks leaves as much again in garbage).
 */
const HOST_HEAP_FLAGS = ['--max-semi-space-size=2', '--heap-growing-percent=20'];
/**
 * glibc's malloc arenas for the host: two, not one per thread that allocates (up to 8 per core), each
 * keeping freed memory of its own. The host's commands and threads do not inherit it (process-host-child.ts
 * unsets it, unless the worker's own environment set it).
 */
function hostMalloc(env: Record<string, string>): Record<string, string> {
  return env.MALLOC_ARENA_MAX === undefined ? { MALLOC_ARENA_MAX: '2', [HOST_MALLOC_ENV]: '1' } : {};
}

/** Starts a process host with `env` (the worker's, scrubbed), as `user` when given. */
export function forkHost(env: Record<string, string>, user: TaskUser | null): ChildProcess {
  // Detached: its own process group, so no signal meant for the worker's group (Ctrl-C) reaches it.
  return fork(HOST, ['airtasks-process-host'], {
    env: {
      ...env,
      ...hostMalloc(env),
      ...(user ? { HOME: user.home, USER: user.name, LOGNAME: user.name } : {}),
    },
    // Node clears the supplementary groups when it sets uid/gid.
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
    // The worker's loader flags (tsx in development), not its inspector: that port is the worker's.
    execArgv: [...process.execArgv.filter((a) => !a.startsWith('--inspect')), ...HOST_HEAP_FLAGS],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    detached: true,
    serialization: 'json',
  });
}
