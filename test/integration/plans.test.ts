import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type pg from 'pg';
import type { Prepared, Queryable } from '../../src/engine/store/db.js';
import { statesOf } from '../../src/engine/store/task-instances.js';
import { refreshStatisticsAfterGrowth } from '../../src/engine/store/statistics.js';
import { storeTryResults } from '../../src/engine/store/results.js';
import { claimTasks } from '../../src/engine/store/claims.js';
import { queueTasks } from '../../src/engine/store/queueing.js';
import { runWorkerTurn } from '../../src/engine/store/worker-turn.js';
import { freshDb, requireService } from '../helpers/env.js';

type TestDb = Awaited<ReturnType<typeof freshDb>>;

/** A bound value in Postgres' text form (arrays as array literals), for EXPLAIN EXECUTE, which binds none. */
function textOf(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  if (!Array.isArray(v)) return String(v);
  const element = (x: unknown) => {
    const t = textOf(x);
    return t === null ? 'NULL' : `"${t.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  };
  return `{${v.map(element).join(',')}}`;
}

const TASKS = 20_000;

/** A Queryable that records the statement a store function sends instead of running it. */
function capture(): { q: Queryable; sent: () => { text: string; values: unknown[] } } {
  let sent: { text: string; values: unknown[] } | null = null;
  const q: Queryable = {
    query: (text: string | Prepared, values?: unknown[]) => {
      sent = { text: typeof text === 'string' ? text : text.text, values: values ?? [] };
      return Promise.reject(new Error('captured'));
    },
  };
  return { q, sent: () => sent! };
}

const m = (i: number) => ({ runId: 'r', taskId: `t${i}`, tryNumber: 1 });
/** Claims of the even tasks (queued), each asking for t1's output. */
const claims = () =>
  Array.from({ length: 8 }, (_, i) => ({
    m: m(2 * i),
    token: randomUUID(),
    upstream: ['t1'],
    outboxId: 1,
  }));
/** Successes of the odd tasks (running), each starting the next odd task when `successors`. */
const results = (successors: boolean) =>
  Array.from({ length: 8 }, (_, i) => ({
    m: m(2 * i + 1),
    token: randomUUID(),
    res: {
      state: 'success' as const,
      exitCode: 0,
      output: null,
      error: null,
      retryInMs: null,
      countsAsFailure: false,
    },
    notify: false,
    logs: [],
    ...(successors ? { successors: [{ taskId: `t${2 * i + 3}`, token: null }] } : {}),
  }));
const statements: Record<string, (q: Queryable) => Promise<unknown>> = {
  claim: (q) => claimTasks(q, 'w', claims()),
  result: (q) => storeTryResults(q, results(false), 'ch'),
  // A turn's claims and results in one statement: each part must keep its key lookups.
  turn: (q) => runWorkerTurn(q, 'w', 'ch', claims(), results(true)),
  queue: (q) => queueTasks(q, [{ runId: 'r', taskId: 't3', from: 'none' }]),
  states: (q) => statesOf(q, 'r', ['t1', 't2']),
  // One claim, one result (a chain's link: its successor claimed with it), one of each: sent as rows of
  // scalars, not arrays (shapedStatement).
  'one claim': (q) => claimTasks(q, 'w', claims().slice(0, 1)),
  'one result': (q) => storeTryResults(q, results(true).slice(0, 1), 'ch', 'w'),
  'one claim and one result': (q) =>
    runWorkerTurn(q, 'w', 'ch', claims().slice(0, 1), results(true).slice(0, 1)),
};
const ALL = Object.keys(statements);
const ONE_ROW = ['one claim', 'one result', 'one claim and one result'];

/** The plan of a store function's statement: custom (as sent unnamed) or generic (as prepared). */
async function planOf(db: TestDb, name: string, generic: boolean): Promise<string> {
  const c = capture();
  await statements[name]!(c.q).catch((e: Error) => {
    if (e.message !== 'captured') throw e;
  });
  const { text, values } = c.sent();
  const client: pg.PoolClient = await db.pool.connect();
  try {
    if (!generic) {
      const r = await client.query(`EXPLAIN ${text}`, values);
      return r.rows.map((x: Record<string, string>) => x['QUERY PLAN']).join('\n');
    }
    await client.query('SET plan_cache_mode = force_generic_plan');
    await client.query(`PREPARE s AS ${text}`);
    const literal = (v: unknown) => {
      const t = textOf(v);
      return t === null ? 'NULL' : client.escapeLiteral(t);
    };
    const r = await client.query(`EXPLAIN EXECUTE s(${values.map(literal).join(', ')})`);
    await client.query('DEALLOCATE s');
    return r.rows.map((x: Record<string, string>) => x['QUERY PLAN']).join('\n');
  } finally {
    client.release(true);
  }
}

function expectKeyLookups(plan: string) {
  expect(plan, plan).to.not.match(/Seq Scan on task_instances/);
  expect(plan, plan).to.not.match(/task_instances_(queued|running|unfinished|retry)_idx/);
  expect(plan, plan).to.include('task_instances_pkey');
}

/** A fresh database with run 'r' of `tasks` tasks, half queued and half running (both partial indexes hold half). */
async function dbWithRun(tasks: number): Promise<TestDb> {
  const db = await freshDb();
  await db.query(`INSERT INTO dag_versions (hash, dag_id, serialized) VALUES ('h', 'd', '{}')`);
  await db.query(`INSERT INTO dag_runs (run_id, dag_id, dag_hash, state) VALUES ('r', 'd', 'h', 'running')`);
  await db.query(
    `INSERT INTO task_instances (run_id, task_id, state, queue, try_number)
     SELECT 'r', 't' || i, CASE WHEN i % 2 = 0 THEN 'queued' ELSE 'running' END, 'worker', 1
     FROM generate_series(0, $1 - 1) i`,
    [tasks],
  );
  return db;
}

/**
 * Postgres' plans for the statements a worker sends per task, on a run as large as the benchmarks' (B2's
 * fan-out): each must find its rows through the primary key. Two traps made them walk the run's tasks:
 * partial indexes whose predicate a constant state implies (walked for every claim and result), and plans
 * made while the table was small (kept by prepared statements until the statistics change).
 */
describe('query plans of the per-task statements on a 20,000-task run', function () {
  this.timeout(60_000);
  let db: TestDb;

  before(async function () {
    await requireService(this, 'postgres');
    db = await dbWithRun(TASKS);
  });

  after(async () => {
    await db?.drop();
  });

  for (const name of ALL)
    it(`${name}: looks tasks up by key on a table never analyzed (custom plan)`, async () => {
      expectKeyLookups(await planOf(db, name, false));
    });

  it('refreshes the statistics after a large growth only', async () => {
    expect(await refreshStatisticsAfterGrowth(db, 999)).to.equal(false);
    expect(await refreshStatisticsAfterGrowth(db, TASKS)).to.equal(true);
    // The statistics now know 20,000 rows: 2,000 more are no reason to read them again.
    expect(await refreshStatisticsAfterGrowth(db, 2000)).to.equal(false);
  });

  for (const name of ALL)
    it(`${name}: looks tasks up by key once the statistics were refreshed (generic plan)`, async () => {
      expectKeyLookups(await planOf(db, name, true));
    });
});

/**
 * A small table, as a new installation's or the benchmarks' (never analyzed): Postgres plans an unnest of
 * rows as ten rows of unknown values and joins them by hashing a scan of the whole table, a cost that grows
 * with it. One claim or result, sent as one row of scalars, is looked up by key.
 */
describe('query plans of one claim or result on a small table', function () {
  this.timeout(60_000);
  let db: TestDb;

  before(async function () {
    await requireService(this, 'postgres');
    db = await dbWithRun(1000);
  });

  after(async () => {
    await db?.drop();
  });

  for (const name of ONE_ROW)
    it(`${name}: looks tasks up by key (generic plan)`, async () => {
      expectKeyLookups(await planOf(db, name, true));
    });
});
