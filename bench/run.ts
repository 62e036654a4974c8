/**
 * `npm run bench [-- --quick] [--json] [--markdown] [b1 b2 ...]`: measures the floors of this machine, then
 * each benchmark (all by default) with its peers, and prints every figure with its ratio to a baseline
 * measured in the same invocation. Progress goes to stderr; the table (or JSON) to stdout.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { b1 } from './b1-chain.js';
import { b2 } from './b2-throughput.js';
import { b3 } from './b3-process.js';
import { b4 } from './b4-container.js';
import { b5 } from './b5-scale.js';
import { b5m } from './b5m-mapped.js';
import { b6 } from './b6-idle.js';
import { b7 } from './b7-scale-out.js';
import { b8 } from './b8-dashboard.js';
import type { Benchmark, BenchContext } from './context.js';
import { timeout } from './engine.js';
import { measureFloors } from './floors.js';
import { skipped, type Figure } from './stats.js';
import { jsonFigures, markdownTable, textTable } from './table.js';

const ALL: Benchmark[] = [b1, b2, b3, b4, b5, b5m, b6, b7, b8];

const USAGE = `usage: npm run bench -- [--quick] [--json | --markdown] [b1 b2 b3 b4 b5 b5m b6 b7 b8]`;

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      markdown: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const unknown = positionals.filter((p) => !ALL.some((b) => b.id === p.toLowerCase()));
  if (unknown.length > 0) {
    console.error(`unknown benchmark ${unknown.join(', ')}\n${USAGE}`);
    process.exit(2);
  }
  const chosen = positionals.length
    ? ALL.filter((b) => positionals.map((p) => p.toLowerCase()).includes(b.id))
    : ALL;
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const started = new Date();
  const loadBefore = os.loadavg();
  log('floors: Postgres commit, RabbitMQ round trip, bare Node RSS');
  const floors = await measureFloors(values.quick);
  const ctx: BenchContext = { quick: values.quick, floors, log };
  const figures: Figure[] = [
    { bench: 'Floor', metric: 'Postgres INSERT+COMMIT round trip p50', value: floors.pgCommitMs, unit: 'ms' },
    {
      bench: 'Floor',
      metric: 'RabbitMQ persistent publish+confirm -> delivery p50',
      value: floors.rabbitRoundTripMs,
      unit: 'ms',
      baseline: { name: 'pg commit', value: floors.pgCommitMs },
    },
    { bench: 'Floor', metric: 'bare Node peak RSS', value: floors.nodeRssMiB, unit: 'MiB' },
  ];
  for (const b of chosen) {
    log(`${b.title}`);
    const t0 = performance.now();
    try {
      figures.push(...(await timeout(b.title, b.timeoutMs(values.quick), b.run(ctx))));
    } catch (err) {
      log(`  failed: ${(err as Error).stack ?? err}`);
      figures.push(skipped(b.title, 'failed', (err as Error).message.slice(0, 200)));
    }
    log(`  (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  const machine = {
    date: started.toISOString(),
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    loadBefore: loadBefore.map((x) => Number(x.toFixed(2))),
    loadAfter: os.loadavg().map((x) => Number(x.toFixed(2))),
    quick: values.quick,
    services: 'PostgreSQL and RabbitMQ on this machine',
  };
  if (values.json) {
    console.log(JSON.stringify({ machine, figures: jsonFigures(figures) }, null, 2));
    return;
  }
  const header = `${machine.date}, ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, Node ${machine.node}; ${machine.services}; load ${machine.loadBefore.join(' ')} before, ${machine.loadAfter.join(' ')} after${machine.quick ? '; --quick' : ''}`;
  const durability =
    'Durability: airtasks keeps every state in Postgres, persistent messages with publisher confirms, acks after commit. ' +
    'Celery: durable queue, persistent messages, confirm_publish, acks_late, prefetch 1, STARTED/SUCCESS in Postgres (SQLAlchemy result backend). ' +
    'graphile-worker: jobs are Postgres rows, completion committed.';
  if (values.markdown) console.log(`${header}\n\n${markdownTable(figures)}\n\n${durability}`);
  else console.log(`${header}\n${durability}\n\n${textTable(figures)}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
