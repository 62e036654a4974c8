/**
 * One engine process of a benchmark (a scheduler or a worker), started by bench/engine.ts with an IPC
 * channel: it answers `stats` with its CPU time, peak RSS and how many SQL statements it sent, and exits
 * cleanly on `stop`. Configured by environment variables (BENCH_*).
 *
 * Plain JavaScript over the built engine (dist/), run by Node with the CLI's flags (CLI_NODE_FLAGS): what
 * `airtasks scheduler` and `airtasks worker` run. Under tsx the engine's own sources would be compiled on the fly, and its loader
 * thread alone costs an idle process about 0.6% of a core here.
 */
// The engine's own pg module (what the CLI loads), not pg directly: see src/engine/store/pg.ts.
import pg from '../dist/engine/store/pg.js';
import { RabbitBroker } from '../dist/engine/broker/rabbitmq.js';
import { Scheduler } from '../dist/engine/scheduler/scheduler.js';
import { Db } from '../dist/engine/store/db.js';
import { Worker } from '../dist/engine/worker/worker.js';
import { createLogger } from '../dist/core/logger.js';

// Counts every statement of this process (pool queries, transactions, BEGIN/COMMIT included).
let statements = 0;
// BENCH_STATEMENT_KINDS=1: also count statements by their first words, printed to stderr on stop (profiling).
const kinds = process.env.BENCH_STATEMENT_KINDS === '1' ? new Map() : null;
const clientQuery = pg.Client.prototype.query;
pg.Client.prototype.query = function (...args) {
  statements++;
  if (kinds) {
    const a = args[0];
    const text = (typeof a === 'string' ? a : (a?.text ?? '')).replace(/\s+/g, ' ').slice(0, 70);
    kinds.set(text, (kinds.get(text) ?? 0) + 1);
  }
  return clientQuery.apply(this, args);
};

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`${k} is not set`);
  return v;
};

// Logs as `airtasks scheduler` and `airtasks worker` do (info, JSON lines on stderr, which bench/engine.ts
// reads as a service manager would): a worker logs each task's start and end, a cost the benchmarks count.
const logger = createLogger({ name: 'airtasks', json: true });

const db = new Db({
  url: env('BENCH_DATABASE_URL'),
  schema: env('BENCH_SCHEMA'),
  maxConnections: Number(env('BENCH_MAX_CONNECTIONS', '10')),
  // BENCH_APP_NAME: names this process's connections, so that B7 can tell its backends apart.
  applicationName: process.env.BENCH_APP_NAME,
  logger,
});
const broker = await RabbitBroker.connect({
  url: env('BENCH_BROKER_URL'),
  prefix: env('BENCH_PREFIX'),
  logger,
});
const role = env('BENCH_ROLE');
const dagsFolder = env('BENCH_DAGS');
const part =
  role === 'scheduler'
    ? new Scheduler({
        db,
        broker,
        logger,
        dagsFolder: process.env.BENCH_PARSE === '1' ? dagsFolder : null,
        // B6's first parse of 1,000 files runs in one child; past this limit it falls back to a child per file.
        parseTimeoutMs: Number(env('BENCH_PARSE_TIMEOUT_MS', '60000')),
      })
    : new Worker({
        db,
        broker,
        queues: [env('BENCH_QUEUE', 'worker')],
        concurrency: Number(env('BENCH_CONCURRENCY', '16')),
        logger,
        dagsFolder,
      });
await part.start();

process.on('message', (m) => {
  if (m === 'stats') {
    const cpu = process.cpuUsage();
    process.send({
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
      statements,
    });
  } else if (m === 'stop') {
    void (async () => {
      await part.stop();
      if (kinds)
        process.stderr.write(
          `${process.env.BENCH_ROLE} statements:\n${[...kinds]
            .sort((a, b) => b[1] - a[1])
            .slice(0, 15)
            .map(([k, n]) => `  ${n}  ${k}`)
            .join('\n')}\n`,
        );
      await broker.close();
      await db.close();
      process.exit(0);
    })();
  }
});
// The benchmark that started this process is gone (killed, timed out): do not linger.
process.on('disconnect', () => process.exit(1));
process.send('ready');
