/**
 * `airtasks trigger dag` on RabbitMQ sends its run's first messages itself, so no scheduler's hop is in the
 * way of the run's start; when RabbitMQ does not answer, the run is created all the same and a scheduler
 * sends them.
 */
import { expect } from 'chai';
import net from 'node:net';
import pg from 'pg';
import { Daemon, runCli, tempDagsFolder } from '../helpers/cli.js';
import { waitFor } from '../helpers/engine.js';
import { BROKER_URL, DATABASE_URL, deleteTestQueues, requireService, uniqueName } from '../helpers/env.js';

const DAGS = {
  'sends.ts': `
import { dag } from 'airtasks';
export const sends = dag('e2e_sends', { defaults: { retries: 0 } });
sends.bash('first', { command: 'echo first' });
`,
};

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

describe('e2e: trigger sends the first messages', function () {
  this.timeout(120_000);
  const schema = uniqueName('e2e');
  const prefix = `${uniqueName('e2e')}.`;
  let env: NodeJS.ProcessEnv;
  let dags: Awaited<ReturnType<typeof tempDagsFolder>>;
  let db: pg.Client;
  const daemons: Daemon[] = [];

  const taskState = async (runId: string) =>
    (
      await db.query<{ state: string }>(
        `SELECT state FROM "${schema}".task_instances WHERE run_id = $1 AND task_id = 'first'`,
        [runId],
      )
    ).rows[0]?.state;

  before(async function () {
    await requireService(this, 'postgres');
    await requireService(this, 'rabbitmq');
    dags = await tempDagsFolder(DAGS);
    env = {
      AIRTASKS_DATABASE_URL: DATABASE_URL,
      AIRTASKS_BROKER_URL: BROKER_URL,
      AIRTASKS_DB_SCHEMA: schema,
      AIRTASKS_QUEUE_PREFIX: prefix,
      AIRTASKS_DAGS_FOLDER: dags.dir,
    };
    db = new pg.Client({ connectionString: DATABASE_URL });
    await db.connect();
    // A scheduler stores the DAG and is stopped: from here on no scheduler runs until the last test.
    const scheduler = new Daemon(['scheduler'], env);
    await scheduler.waitFor('dags folder parsed');
    expect(await scheduler.stop()).to.equal(0);
    const worker = new Daemon(['worker', '-c', '1'], env);
    daemons.push(worker);
    await worker.waitFor('worker started');
  });

  after(async () => {
    for (const d of daemons) await d.stop();
    if (db) {
      await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await db.end();
    }
    await dags?.remove();
    if (env) await deleteTestQueues(prefix, ['worker']);
  });

  it('starts a run with no scheduler running', async () => {
    const runId = uniqueName('sent');
    const t = await runCli(['trigger', 'dag', 'e2e_sends', '--run-id', runId], env);
    expect(t.code, t.stderr).to.equal(0);
    await waitFor(async () => (await taskState(runId)) === 'success', 'the first task to succeed', 20_000);
  });

  it('leaves the messages to a scheduler when RabbitMQ does not answer, losing nothing', async () => {
    const runId = uniqueName('unsent');
    const nowhere = { ...env, AIRTASKS_BROKER_URL: `amqp://guest:guest@127.0.0.1:${await closedPort()}` };
    const t = await runCli(['trigger', 'dag', 'e2e_sends', '--run-id', runId], nowhere);
    expect(t.code, t.stderr).to.equal(0);
    expect(t.stdout.trim()).to.equal(runId);
    const outbox = await db.query(`SELECT 1 FROM "${schema}".outbox WHERE payload->>'runId' = $1`, [runId]);
    expect(outbox.rowCount).to.equal(1);
    expect(await taskState(runId)).to.equal('queued');
    const scheduler = new Daemon(['scheduler'], env);
    daemons.push(scheduler);
    await waitFor(async () => (await taskState(runId)) === 'success', 'the first task to succeed', 30_000);
  });
});
