/**
 * The decisions the autoscaler records (migration 0013), with the real things: a swarm service of this
 * machine's one-node swarm stands for the stack's worker service, RabbitMQ holds the backlog, Postgres the
 * record. Drives autoscaleOnce (what `autoscale --once` runs) and the Autoscaler's pass; the swarm view
 * returns what was recorded.
 */
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import pino from 'pino';
import { RabbitBroker } from '../../src/engine/broker/rabbitmq.js';
import { recentDecisions, recordDecision } from '../../src/engine/store/autoscaler-decisions.js';
import { Db } from '../../src/engine/store/db.js';
import { Autoscaler } from '../../src/services/autoscale/autoscaler.js';
import type { QueueAutoscaleConfig } from '../../src/services/autoscale/config.js';
import { DecisionHistory } from '../../src/services/autoscale/history.js';
import { autoscaleOnce } from '../../src/services/autoscale/index.js';
import { QueueInputs } from '../../src/services/autoscale/inputs.js';
import { resolveConnection } from '../../src/services/config.js';
import { swarmOverview } from '../../src/services/swarm-view.js';
import { swarmQueueFixture } from '../helpers/autoscale.js';
import { BROKER_URL, DATABASE_URL, type freshDb, uniqueName } from '../helpers/env.js';

describe('autoscale: the decisions it records', function () {
  this.timeout(120_000);
  let d: Docker;
  let db: Awaited<ReturnType<typeof freshDb>>;
  let broker: RabbitBroker;
  let dir: string;
  let stack: string;
  let service: string;
  let prefix: string;
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) });
  const opts = () => ({
    databaseUrl: DATABASE_URL,
    brokerUrl: BROKER_URL,
    schema: db.schema,
    queuePrefix: prefix,
    cwd: dir,
    logger,
  });
  const HOUR = 3_600_000;

  before(async function () {
    let image: string;
    ({ d, image, db, stack, service } = await swarmQueueFixture(this));
    prefix = uniqueName('ash');
    broker = await RabbitBroker.connect({ url: BROKER_URL, prefix });
    dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-autoscale-history-'));
    // A long cooldown: a low backlog gives cooldown holds, not a scale-down.
    await writeFile(
      path.join(dir, 'airtasks.json'),
      JSON.stringify({ stackName: stack, queues: { q: { concurrency: 2, min: 1, max: 3, cooldown: '1h' } } }),
    );
    await d.createService({
      Name: service,
      TaskTemplate: { ContainerSpec: { Image: image, Command: ['sleep', '3600'] } },
      Mode: { Replicated: { Replicas: 1 } },
      Labels: { 'airtasks.test': 'autoscale-history' },
    });
  });

  after(async () => {
    await d
      ?.getService(service)
      .remove()
      .catch(() => undefined);
    await broker?.deleteQueues(['q']);
    await broker?.close();
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const rows = (s = stack) => recentDecisions(db, s, 1000);
  const replicas = async () =>
    ((await d.getService(service).inspect()) as { Spec: { Mode: { Replicated: { Replicas: number } } } }).Spec
      .Mode.Replicated.Replicas;
  const config = (over: Partial<QueueAutoscaleConfig> = {}): QueueAutoscaleConfig => ({
    queue: 'q',
    service,
    concurrency: 2,
    min: 1,
    max: 3,
    cooldownMs: HOUR,
    nodeGroupHook: null,
    workersPerNode: 1,
    ...over,
  });
  /** An Autoscaler as `autoscale` builds it, with the real readings, and a history and clock of the test's. */
  const scaler = (
    history: DecisionHistory,
    clock: () => number,
    o: { brokerUrl?: string; cooldownMs?: number },
  ) => {
    const inputs = new QueueInputs(
      resolveConnection({ ...opts(), brokerUrl: o.brokerUrl ?? BROKER_URL }),
      logger,
    );
    const a = new Autoscaler({
      queues: [config({ cooldownMs: o.cooldownMs ?? HOUR })],
      docker: d,
      read: (q) => inputs.read(q),
      logger,
      history,
      now: clock,
    });
    return { a, close: () => inputs.close() };
  };

  it('records a scale-up with its inputs; a dry run records nothing', async () => {
    await broker.publish(
      Array.from({ length: 7 }, (_, i) => ({
        queue: 'q',
        priority: 1,
        body: { runId: 'r', taskId: `t${i}`, tryNumber: 1 },
      })),
    );
    const dry = await autoscaleOnce({ ...opts(), dryRun: true });
    expect(dry.queues[0]).to.deep.include({ action: 'up', target: 3, scaled: false });
    expect(await rows()).to.deep.equal([]);

    const before = Date.now();
    const act = await autoscaleOnce(opts());
    expect(act.queues[0]).to.deep.include({ action: 'up', current: 1, target: 3, scaled: true });
    expect(await replicas()).to.equal(3);
    const [up, ...rest] = await rows();
    expect(rest).to.deep.equal([]);
    expect(up).to.deep.include({
      stack,
      queue: 'q',
      service,
      action: 'up',
      current: 1,
      wanted: 3,
      target: 3,
      scaled: true,
      nodes: null,
      error: null,
      reason: 'backlog 7 needs 3 worker(s) of concurrency 2',
    });
    expect(up!.inputs).to.deep.equal({
      ready: 7,
      unacked: null,
      running: 0,
      backlog: 7,
      concurrency: 2,
      min: 1,
      max: 3,
      cooldownMs: HOUR,
      cooldownLeftMs: null,
    });
    expect(up!.at.getTime()).to.be.within(before - 1000, Date.now() + 1000);
  });

  it('the swarm view returns the last decisions, newest first, and its dry run records none', async () => {
    const view = await swarmOverview(opts());
    expect(view).to.deep.include({ unavailable: null, stack, decisionsError: null });
    expect(view.autoscaler).to.deep.include({ dryRun: true });
    expect(view.autoscaler!.queues[0]).to.deep.include({ action: 'hold', current: 3, target: 3 });
    expect(view.decisions).to.have.length(1);
    expect(view.decisions[0]).to.deep.include({
      queue: 'q',
      action: 'up',
      current: 1,
      target: 3,
      scaled: true,
    });
    expect(view.decisions[0]!.inputs).to.deep.include({ ready: 7, backlog: 7 });
    expect(view.decisions[0]!.at).to.match(/^\d{4}-\d\d-\d\dT.*Z$/);
    expect(await rows()).to.have.length(1);
  });

  it('records a hold once however many passes repeat it, and a new kind of hold again', async () => {
    for (let i = 0; i < 3; i++) expect((await autoscaleOnce(opts())).queues[0]!.action).to.equal('hold');
    expect((await rows()).map((r) => r.action)).to.deep.equal(['hold', 'up']);
    // No backlog: a scale-down waits for the cooldown; each pass has its own time left, one row all the same.
    await broker.deleteQueues(['q']);
    for (let i = 0; i < 2; i++) expect((await autoscaleOnce(opts())).queues[0]!.action).to.equal('cooldown');
    const all = await rows();
    expect(all.map((r) => r.action)).to.deep.equal(['cooldown', 'hold', 'up']);
    expect(all[0]).to.deep.include({ current: 3, wanted: 1, target: 3, scaled: false });
    expect(all[0]!.inputs).to.deep.include({ backlog: 0, cooldownLeftMs: HOUR });
    expect((await swarmOverview(opts())).decisions.map((r) => r.action)).to.deep.equal([
      'cooldown',
      'hold',
      'up',
    ]);
  });

  it('records a failed read with its error, once while the same error lasts', async () => {
    const bad = { ...opts(), brokerUrl: 'amqp://guest:guest@127.0.0.1:1' };
    for (let i = 0; i < 3; i++) expect((await autoscaleOnce(bad)).queues[0]!.action).to.equal('read-failed');
    const all = (await rows()).filter((r) => r.action === 'read-failed');
    expect(all, JSON.stringify(all)).to.have.length(1);
    expect(all[0]).to.deep.include({
      action: 'read-failed',
      current: 3,
      target: 3,
      wanted: null,
      scaled: false,
    });
    expect(all[0]!.reason).to.match(/^keeping 3: broker unreachable/);
    expect(all[0]!.inputs).to.deep.include({ ready: null, backlog: null, concurrency: 2 });
    // Another error is another row.
    const other = { ...opts(), brokerUrl: 'amqp://guest:guest@127.0.0.1:2' };
    expect((await autoscaleOnce(other)).queues[0]!.action).to.equal('read-failed');
    expect((await rows()).filter((r) => r.action === 'read-failed')).to.have.length(2);
    expect(await replicas()).to.equal(3);
  });

  it("keeps a stack's newest rows, none older than the age bound, and leaves other stacks alone", async () => {
    const other = `${stack}-bounds`;
    const mine = (await rows()).length;
    const bounds = { keep: 4, maxAgeMs: 60_000 };
    let t = Date.now();
    // Decisions kept whatever came before (scales), a second apart.
    const record = (i: number) =>
      recordDecision(
        db,
        {
          at: new Date(t),
          stack: other,
          queue: 'q',
          service: `${other}_worker-q`,
          action: i % 2 ? 'up' : 'down',
          current: i % 2 ? 1 : 2,
          wanted: i % 2 ? 2 : 1,
          target: i % 2 ? 2 : 1,
          scaled: true,
          inputs: {},
          nodes: null,
          reason: `pass ${i}`,
          error: null,
        },
        true,
        bounds,
      );
    const ids: number[] = [];
    for (let i = 0; i < 6; i++) {
      t += 1000;
      await record(i);
      ids.push((await rows(other))[0]!.id);
    }
    expect((await rows(other)).map((r) => r.id)).to.deep.equal(ids.slice(-4).reverse());
    t += 61_000; // older than the bound: gone at the next record
    await record(6);
    const left = await rows(other);
    expect(left).to.have.length(1);
    expect(left[0]!.at.getTime()).to.equal(t);
    expect(await rows()).to.have.length(mine);
  });

  it('a database that cannot record does not stop the scaling (a warning is logged)', async () => {
    const broken = new Db({ url: DATABASE_URL, schema: uniqueName('no_such') });
    lines.length = 0;
    // Cooldown 0: no backlog scales down from 3 to 1 in this pass.
    const s = scaler(new DecisionHistory(broken, stack, logger), Date.now, { cooldownMs: 0 });
    try {
      const [o] = await s.a.pass();
      expect(o).to.deep.include({ action: 'down', current: 3, target: 1, scaled: true, error: null });
      expect(await replicas()).to.equal(1);
    } finally {
      await s.close();
      await broken.close();
    }
    const warned = lines.map((l) => JSON.parse(l) as { level: number; msg: string; err?: string });
    expect(warned.find((l) => l.msg === 'could not record the autoscale decision')).to.deep.include({
      level: 40,
    });
    expect(JSON.stringify(warned)).to.match(/autoscaler_decisions/);
  });
});
