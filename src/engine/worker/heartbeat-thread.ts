/**
 * The worker's heartbeat, in a thread of its own with its own database connection: neither task code nor
 * the worker's own work on the main thread can starve it (a node task's synchronous loop once did, and the
 * worker was declared lost while its tasks still ran). The main thread tells it the claims it holds; it
 * answers with those found lost, which the main thread stops. It also watches the main thread: one that
 * answers no ping for mainStallKillMs would be kept alive by this heartbeat for ever while storing
 * nothing, so the thread kills the process (its process host then kills the tasks' commands).
 */
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { Db } from '../store/db.js';
import { heartbeat } from '../store/workers.js';

export interface HeartbeatThreadData {
  url: string;
  schema: string;
  applicationName: string;
  workerId: string;
  heartbeatMs: number;
  mainStallKillMs: number;
  /** The main thread's log level and whether its stderr is a terminal (the thread logs only when killing). */
  logLevel: string;
  stderrIsTTY: boolean;
}

/** From the main thread: the claim tokens it holds when they changed since it last said, a heartbeat now. */
export type ToHeartbeat = { t: 'pong'; tokens?: string[] } | { t: 'beat'; tokens: string[] } | { t: 'stop' };

/** To the main thread. */
export type FromHeartbeat =
  { t: 'ready' } | { t: 'ping' } | { t: 'lost'; tokens: string[] } | { t: 'failed'; err: string };

const port = parentPort!;
const d = workerData as HeartbeatThreadData;
const db = new Db({
  url: d.url,
  schema: d.schema,
  maxConnections: 1,
  applicationName: `${d.applicationName}-heartbeat`,
});
const post = (m: FromHeartbeat) => port.postMessage(m);

let tokens: string[] = [];
let inFlight = false;
let again = false;
/** When the oldest ping the main thread has not answered went out (monotonic clock). */
let unansweredSince: number | null = null;

async function beat(): Promise<void> {
  if (inFlight) {
    again = true;
    return;
  }
  inFlight = true;
  try {
    do {
      again = false;
      try {
        const lost = await heartbeat(db, d.workerId, tokens);
        if (lost.length > 0) post({ t: 'lost', tokens: lost });
      } catch (err) {
        post({ t: 'failed', err: (err as Error).message });
      }
    } while (again);
  } finally {
    inFlight = false;
  }
}

function tick() {
  const now = performance.now();
  if (unansweredSince === null) {
    unansweredSince = now;
    post({ t: 'ping' });
  } else if (now - unansweredSince > d.mainStallKillMs) {
    void killStalledProcess(now - unansweredSince);
    return;
  }
  void beat();
}

/** The main thread's event loop is stuck: logs why from here (it cannot) and kills the whole process. */
async function killStalledProcess(stalledMs: number) {
  clearInterval(timer);
  try {
    const { createLogger } = await import('../../core/logger.js');
    const json = process.env.AIRTASKS_LOG_FORMAT === 'json' || !d.stderrIsTTY;
    createLogger({ level: d.logLevel, json, name: 'airtasks' })
      .child({ component: 'worker', workerId: d.workerId })
      .error(
        { stalledMs: Math.round(stalledMs) },
        `the worker's main thread has not answered for ${Math.round(stalledMs / 1000)} s (its event ` +
          'loop is blocked, by synchronous task code or a bug): killing the worker; its tasks are lost and run again',
      );
  } finally {
    process.kill(process.pid, 'SIGKILL');
  }
}

// The first heartbeat at once (below): the worker was registered while this thread loaded.
const timer = setInterval(tick, d.heartbeatMs);

port.on('message', (m: ToHeartbeat) => {
  if (m.t === 'stop') {
    clearInterval(timer);
    port.close();
    void db.close();
    return;
  }
  unansweredSince = null;
  if (m.tokens) tokens = m.tokens;
  if (m.t === 'beat') void beat();
});
void beat().then(() => post({ t: 'ready' }));
