/**
 * The lifeline of a worker process's process tasks: one small bash process, shared by all tasks, that keeps
 * the process groups of the running tasks and SIGKILLs every one of them when its stdin reaches EOF, which
 * happens when the worker process is gone however it ended (even SIGKILLed: the kernel closes the pipe).
 * So no task keeps running unseen after its worker is gone. One process per worker, not one per task:
 * a watcher per task cost a fork for each. Bash, not Node, to keep it small.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';

/**
 * Reads `+ <pgid>` (register) and `- <pgid>` (forget) lines; at EOF kills what is still registered. A sparse
 * indexed array keyed by the pgid, not an associative one: bash 3 (macOS) has none.
 */
const SCRIPT = `g=()
while read -r op id; do
  case $op in
    +) g[$id]=1 ;;
    -) unset "g[$id]" ;;
  esac
done
for id in "\${!g[@]}"; do kill -KILL -- "-$id"; done 2>/dev/null`;

const groups = new Set<number>();
let reaper: ChildProcess | null = null;

/** Registers a task's process group: call in the tick it was spawned, before anything can kill the worker. */
export function registerGroup(pgid: number): void {
  groups.add(pgid);
  // A new reaper is sent every registered group (this one too): one that died took its list with it.
  if (!reaper) start();
  else send(`+ ${pgid}\n`);
}

/** Forgets a group once it has been killed (its id may be reused afterwards). */
export function forgetGroup(pgid: number): void {
  if (!groups.delete(pgid)) return;
  send(`- ${pgid}\n`);
}

function start() {
  // Detached: its own process group, so no signal meant for the worker's group (Ctrl-C) or a task's reaches it.
  const child = spawn('bash', ['-c', SCRIPT, 'airtasks-reaper'], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  });
  reaper = child;
  const gone = () => {
    if (reaper === child) reaper = null; // the next task starts a new one
  };
  child.on('error', gone);
  child.on('exit', gone);
  child.stdin!.on('error', gone);
  // It lives as long as the worker process and must not keep the worker's event loop alive.
  child.unref();
  (child.stdin as Socket).unref();
  send([...groups].map((g) => `+ ${g}\n`).join(''));
}

function send(lines: string) {
  if (reaper && lines) reaper.stdin!.write(lines);
}
