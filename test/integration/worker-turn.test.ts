import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Prepared, Queryable } from '../../src/engine/store/db.js';
import type { TryResult } from '../../src/engine/store/results.js';
import { runWorkerTurn } from '../../src/engine/store/worker-turn.js';
import { freshDb, requireService } from '../helpers/env.js';

type TestDb = Awaited<ReturnType<typeof freshDb>>;

const success: TryResult = {
  state: 'success',
  exitCode: 0,
  output: { n: 1 },
  error: null,
  retryInMs: null,
  countsAsFailure: false,
};

/**
 * A worker's claims and results of one turn, in one statement: each keeps its own conditions (a stale
 * claim wins nothing, a result whose token lost its claim stores nothing), and a claim asked together with
 * the result of its only upstream task sees that task as it was before the statement.
 */
describe('a worker turn: claims and results in one statement', function () {
  this.timeout(30_000);
  let db: TestDb;
  const logical = new Date('2026-12-01T10:11:12.345Z');

  before(async function () {
    await requireService(this, 'postgres');
    db = await freshDb();
    await db.query(`INSERT INTO dag_versions (hash, dag_id, serialized) VALUES ('h', 'd', '{}')`);
    await db.query(
      `INSERT INTO dag_runs (run_id, dag_id, dag_hash, state, conf, logical_date)
       VALUES ('r', 'd', 'h', 'running', '{"name":"Bob"}', $1)`,
      [logical],
    );
  });

  after(async () => {
    await db?.drop();
  });

  it('claims queued tries and stores fenced results together, each kind keeping its conditions', async () => {
    const a = randomUUID();
    const lost = randomUUID();
    await db.query(
      `INSERT INTO task_instances (run_id, task_id, state, queue, try_number, claim_token, worker_id, started_at)
       VALUES ('r', 'done', 'running', 'q', 1, $1, 'w', now()),
              ('r', 'other', 'running', 'q', 1, $2, 'w2', now()),
              ('r', 'next', 'queued', 'q', 1, NULL, NULL, NULL),
              ('r', 'stale', 'queued', 'q', 3, NULL, NULL, NULL),
              ('r', 'down', 'none', 'q', 0, NULL, NULL, NULL)`,
      [a, randomUUID()],
    );
    let statements = 0;
    const counting: Queryable = {
      query: (text: string | Prepared, values?: unknown[]) => {
        statements++;
        return db.query(text, values);
      },
    };
    const b = randomUUID();
    const c = randomUUID();
    const turn = await runWorkerTurn(
      counting,
      'w',
      'airtasks_test_events',
      [
        { m: { runId: 'r', taskId: 'next', tryNumber: 1 }, token: b, upstream: ['done'], outboxId: null },
        // A message for a try that is not the task's current one: stale.
        { m: { runId: 'r', taskId: 'stale', tryNumber: 2 }, token: c, upstream: null, outboxId: null },
      ],
      [
        {
          m: { runId: 'r', taskId: 'done', tryNumber: 1 },
          token: a,
          res: success,
          notify: false,
          logs: [],
          successors: [{ taskId: 'down', token: null }],
        },
        // Its claim token is not the task's: fenced out.
        {
          m: { runId: 'r', taskId: 'other', tryNumber: 1 },
          token: lost,
          res: success,
          notify: false,
          logs: [],
        },
      ],
    );
    expect(statements).to.equal(1);

    const [claimed, stale] = turn.claims;
    expect(stale).to.equal(null);
    expect(claimed).to.not.equal(null);
    expect(claimed!.dagId).to.equal('d');
    expect(claimed!.dagHash).to.equal('h');
    expect(claimed!.conf).to.deep.equal({ name: 'Bob' });
    expect(claimed!.logicalDate).to.be.instanceOf(Date);
    expect(claimed!.logicalDate.toISOString()).to.equal(logical.toISOString());
    // The statement's snapshot: the upstream task was still running when the claim read its outputs.
    expect(claimed!.outputs).to.be.instanceOf(Map);
    expect(claimed!.outputs!.size).to.equal(0);

    expect(turn.results.map((r) => r.stored)).to.deep.equal([true, false]);
    expect(turn.results[0]!.started.map((s) => [s.taskId, s.tryNumber, s.outbox !== null])).to.deep.equal([
      ['down', 1, true],
    ]);

    const rows = await db.query<{
      task_id: string;
      state: string;
      claim_token: string | null;
      worker_id: string | null;
    }>(
      `SELECT task_id, state, claim_token, worker_id FROM task_instances WHERE run_id = 'r' ORDER BY task_id`,
    );
    const byTask = Object.fromEntries(rows.rows.map((r) => [r.task_id, r]));
    expect(byTask['done']!.state).to.equal('success');
    expect(byTask['other']!.state).to.equal('running');
    expect(byTask['next']).to.include({ state: 'running', claim_token: b, worker_id: 'w' });
    expect(byTask['stale']!.state).to.equal('queued');
    expect(byTask['down']!.state).to.equal('queued');
    const tries = await db.query<{ task_id: string }>(`SELECT task_id FROM task_tries WHERE run_id = 'r'`);
    expect(tries.rows.map((r) => r.task_id)).to.deep.equal(['done']);
    const outbox = await db.query<{ payload: unknown }>(`SELECT payload FROM outbox`);
    expect(outbox.rows.map((r) => r.payload)).to.deep.equal([{ runId: 'r', taskId: 'down', tryNumber: 1 }]);
  });

  it('sends one kind alone through its own statement when the other is empty', async () => {
    const t = randomUUID();
    await db.query(
      `INSERT INTO task_instances (run_id, task_id, state, queue, try_number) VALUES ('r', 'alone', 'queued', 'q', 1)`,
    );
    const sent: string[] = [];
    const recording: Queryable = {
      query: (text: string | Prepared, values?: unknown[]) => {
        sent.push(typeof text === 'string' ? text : text.name);
        return db.query(text, values);
      },
    };
    const turn = await runWorkerTurn(
      recording,
      'w',
      'airtasks_test_events',
      [{ m: { runId: 'r', taskId: 'alone', tryNumber: 1 }, token: t, upstream: null, outboxId: null }],
      [],
    );
    expect(sent).to.deep.equal(['airtasks_claim_tasks_one_cx']);
    expect(turn.claims[0]!.dagId).to.equal('d');
    expect(turn.results).to.deep.equal([]);
  });

  it('keeps each condition when one claim and one result go as single rows', async () => {
    const running = randomUUID();
    await db.query(
      `INSERT INTO task_instances (run_id, task_id, state, queue, try_number, claim_token, worker_id, started_at)
       VALUES ('r', 'one-done', 'running', 'q', 1, $1, 'w', now()),
              ('r', 'one-next', 'queued', 'q', 2, NULL, NULL, NULL),
              ('r', 'one-down', 'none', 'q', 0, NULL, NULL, NULL)`,
      [running],
    );
    const names: string[] = [];
    const recording: Queryable = {
      query: (text: string | Prepared, values?: unknown[]) => {
        names.push(typeof text === 'string' ? text : text.name);
        return db.query(text, values);
      },
    };
    const claim = (tryNumber: number, token: string) => ({
      m: { runId: 'r', taskId: 'one-next', tryNumber },
      token,
      upstream: ['one-done'],
      outboxId: null,
    });
    const result = (token: string) => ({
      m: { runId: 'r', taskId: 'one-done', tryNumber: 1 },
      token,
      res: success,
      notify: false,
      logs: [],
      successors: [{ taskId: 'one-down', token: randomUUID() }],
    });
    // A stale message and a token that is not the task's: neither changes anything.
    const missed = await runWorkerTurn(
      recording,
      'w',
      'airtasks_test_events',
      [claim(1, randomUUID())],
      [result(randomUUID())],
    );
    expect(missed.claims).to.deep.equal([null]);
    expect(missed.results).to.deep.equal([{ stored: false, started: [] }]);
    const token = randomUUID();
    const won = await runWorkerTurn(
      recording,
      'w',
      'airtasks_test_events',
      [claim(2, token)],
      [result(running)],
    );
    expect(names).to.deep.equal(['airtasks_worker_turn_one_cx_x', 'airtasks_worker_turn_one_cx_x']);
    expect(won.claims[0]!.conf).to.deep.equal({ name: 'Bob' });
    expect(won.results[0]!.stored).to.equal(true);
    expect(won.results[0]!.started.map((x) => [x.taskId, x.upstreamOutput])).to.deep.equal([
      ['one-down', { n: 1 }],
    ]);
    const rows = await db.query<{ task_id: string; state: string; claim_token: string | null }>(
      `SELECT task_id, state, claim_token FROM task_instances WHERE task_id LIKE 'one-%' ORDER BY task_id`,
    );
    expect(rows.rows.map((r) => [r.task_id, r.state, r.claim_token === token])).to.deep.equal([
      ['one-done', 'success', false],
      ['one-down', 'running', false],
      ['one-next', 'running', true],
    ]);
  });
});
