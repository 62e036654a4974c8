/**
 * A stack's services start in no set order: with AIRTASKS_CONNECT_WAIT the scheduler waits for a
 * database that comes up later (here: a loopback port that forwards to this machine's PostgreSQL
 * only after a while) instead of exiting 4 and being restarted by swarm; without it, it fails at once.
 */
import { expect } from 'chai';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { UnavailableError } from '../../src/core/errors.js';
import { connectWaitMs } from '../../src/services/daemons.js';
import { asUserError } from '../../src/services/engine.js';
import { Daemon, tempDagsFolder } from '../helpers/cli.js';
import { DATABASE_URL, requireService, uniqueName } from '../helpers/env.js';

/** A free loopback port: nothing listens there until `open()` forwards it to `target`. */
async function latePort(target: URL) {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  return {
    port,
    open: () => new Promise<void>((r) => server.listen(port, '127.0.0.1', r)),
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('AIRTASKS_CONNECT_WAIT', function () {
  this.timeout(60_000);

  it('is a duration (a plain number is seconds); unset or empty is no wait', () => {
    expect(connectWaitMs({})).to.equal(0);
    expect(connectWaitMs({ AIRTASKS_CONNECT_WAIT: '' })).to.equal(0);
    expect(connectWaitMs({ AIRTASKS_CONNECT_WAIT: '120s' })).to.equal(120_000);
    expect(connectWaitMs({ AIRTASKS_CONNECT_WAIT: '2m' })).to.equal(120_000);
    expect(connectWaitMs({ AIRTASKS_CONNECT_WAIT: '15' })).to.equal(15_000);
    expect(() => connectWaitMs({ AIRTASKS_CONNECT_WAIT: 'soon' })).to.throw(/AIRTASKS_CONNECT_WAIT/);
  });

  it('waits out a database that is starting (57P03), as one that is not there yet', () => {
    const conn = {
      databaseUrl: 'postgres://airtasks@postgres:5432/airtasks',
      brokerUrl: undefined,
      connectTimeoutMs: 10_000,
    };
    for (const [code, message] of [
      ['57P03', 'the database system is starting up'],
      ['EAI_AGAIN', 'getaddrinfo EAI_AGAIN postgres'],
    ]) {
      const err = asUserError(Object.assign(new Error(message), { code }), 'database', conn);
      expect(err, code).to.be.instanceOf(UnavailableError);
      expect((err as UnavailableError).dependency).to.equal('database');
    }
  });

  describe('a scheduler started before its database', () => {
    let dags: Awaited<ReturnType<typeof tempDagsFolder>>;
    let late: Awaited<ReturnType<typeof latePort>>;
    let env: NodeJS.ProcessEnv;
    const daemons: Daemon[] = [];

    before(async function () {
      await requireService(this, 'postgres');
      dags = await tempDagsFolder({});
      late = await latePort(new URL(DATABASE_URL));
      const url = new URL(DATABASE_URL);
      url.port = String(late.port);
      env = {
        AIRTASKS_DATABASE_URL: url.toString(),
        AIRTASKS_BROKER_URL: '',
        AIRTASKS_DB_SCHEMA: uniqueName('wait'),
        AIRTASKS_DAGS_FOLDER: dags.dir,
      };
    });
    after(async () => {
      for (const d of daemons) await d.stop('SIGKILL');
      await late?.close();
      await dags?.remove();
      if (env) {
        const c = new pg.Client({ connectionString: DATABASE_URL });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS "${env.AIRTASKS_DB_SCHEMA}" CASCADE`);
        await c.end();
      }
    });

    it('fails at once with exit code 4 without a wait', async () => {
      const d = new Daemon(['scheduler'], env);
      daemons.push(d);
      expect(await d.exited, d.output).to.equal(4);
    });

    it('waits for it, then starts, with AIRTASKS_CONNECT_WAIT', async () => {
      const d = new Daemon(['scheduler'], { ...env, AIRTASKS_CONNECT_WAIT: '30s' });
      daemons.push(d);
      await d.waitFor('waiting for the database');
      await late.open();
      await d.waitFor('scheduler started', 30_000);
      expect(await d.stop('SIGTERM'), d.output).to.equal(0);
    });
  });
});
