/**
 * A database or broker that cannot be used, as a user meets it: a refused port, a server that accepts
 * and never answers, a wrong password or vhost, a URL that points at another service. Every command
 * says which service, where (password hidden) and what to check, with exit code 4 within ~15 s and no
 * stack trace; the same bad URL reads the same in every command. Loopback traffic only.
 */
import http from 'node:http';
import net from 'node:net';
import { expect } from 'chai';
import { runCli, tempDagsFolder, type CliResult } from '../helpers/cli.js';
import { BROKER_URL, DATABASE_URL, requireService, uniqueName } from '../helpers/env.js';

/** A server on a loopback port; `close()` also drops the connections it holds. */
async function listen(srv: net.Server): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => srv.close(() => resolve()));
    },
  };
}

/** A port nothing listens on (taken and given back). */
async function freePort(): Promise<number> {
  const srv = await listen(net.createServer());
  await srv.close();
  return srv.port;
}

/** The message of a refusal on stderr, oclif's wrapping undone. */
const messageOf = (r: CliResult) => r.stderr.replace(/\s*\n\s*›\s*/g, ' ').trim();

describe('e2e: a database or broker that cannot be used', function () {
  this.timeout(120_000);
  const schema = uniqueName('cf');
  let env: NodeJS.ProcessEnv;
  let dags: Awaited<ReturnType<typeof tempDagsFolder>>;
  let silent: Awaited<ReturnType<typeof listen>>;
  let web: Awaited<ReturnType<typeof listen>>;

  /** Runs the CLI and measures how long it took. */
  const cli = async (args: string[], extra: NodeJS.ProcessEnv = {}) => {
    const started = Date.now();
    const r = await runCli(args, { ...env, ...extra }, 60_000);
    return { ...r, ms: Date.now() - started, args };
  };

  /**
   * Exit `code` within `withinMs`, a message matching `text`, no stack trace, no password. The bound only
   * catches a hang: the message names the wait that ended it, and timings belong in benchmarks (a loaded
   * machine took 15.3 s for a 10 s timeout plus a CLI start).
   */
  const expectFault = (
    r: CliResult & { ms: number; args: string[] },
    code: number,
    text: string | RegExp,
    withinMs = 45_000,
  ) => {
    const where = `airtasks ${r.args.join(' ')} (${r.ms} ms)\n${r.stderr.slice(0, 3000)}`;
    expect(r.code, where).to.equal(code);
    if (typeof text === 'string') expect(messageOf(r), where).to.include(text);
    else expect(messageOf(r), where).to.match(text);
    expect(r.stderr, where).to.not.match(/\n\s+at .*\.(js|ts):\d+/); // no stack trace
    expect(r.stderr, where).to.not.include('s3cret');
    expect(r.ms, where).to.be.below(withinMs);
  };

  /** The error line of a refusal (the daemons' log lines before it left out). */
  const errorLine = (r: CliResult) => messageOf(r).replace(/^[\s\S]*?Error: /, '');

  before(async function () {
    await requireService(this, 'postgres');
    dags = await tempDagsFolder({});
    env = {
      AIRTASKS_DATABASE_URL: DATABASE_URL,
      AIRTASKS_DB_SCHEMA: schema,
      AIRTASKS_DAGS_FOLDER: dags.dir,
      AIRTASKS_BROKER_URL: '',
      AIRTASKS_CONNECT_TIMEOUT: '',
      AIRTASKS_LOG_LEVEL: 'info',
    };
    const m = await runCli(['db', 'migrate'], env);
    expect(m.code, m.stderr).to.equal(0);
    // Accepts connections and never says a word.
    silent = await listen(net.createServer(() => undefined));
    web = await listen(http.createServer((_req, res) => res.end('hello')));
  });

  after(async () => {
    await silent?.close();
    await web?.close();
    if (env) {
      const { default: pg } = await import('pg');
      const c = new pg.Client({ connectionString: DATABASE_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    }
    await dags?.remove();
  });

  it('a refused broker port: the broker and its address, the same in every command (exit 4)', async () => {
    const port = await freePort();
    const broker = { AIRTASKS_BROKER_URL: `amqp://guest:s3cret@127.0.0.1:${port}/` };
    const [worker, scheduler, status] = await Promise.all([
      cli(['worker', '-q', 'worker', '--gpus', 'none'], broker),
      cli(['scheduler'], broker),
      cli(['status'], broker),
    ]);
    const text = `Cannot reach the broker at amqp://guest:***@127.0.0.1:${port}/ (connection refused)`;
    expectFault(worker, 4, text);
    expectFault(scheduler, 4, text);
    expect(errorLine(worker)).to.include('check that RabbitMQ runs there').and.not.include('database');
    expect(errorLine(scheduler)).to.equal(errorLine(worker));
    // status shows what it can and says why the queue depths are missing, in the same words.
    expect(status.code, status.stderr).to.equal(0);
    expect(messageOf(status)).to.include(`queue depths unavailable: ${text}`);
  });

  it('a refused database port: the database and its address, the same in every command (exit 4)', async () => {
    const port = await freePort();
    const db = { AIRTASKS_DATABASE_URL: `postgres://postgres:s3cret@127.0.0.1:${port}/test` };
    const runs = await Promise.all([
      cli(['worker', '-q', 'worker', '--gpus', 'none'], db),
      cli(['scheduler'], db),
      cli(['trigger', 'dag', 'any_dag'], db),
      cli(['dags', 'list'], db),
      cli(['db', 'migrate'], db),
    ]);
    const text = `Cannot reach the database at postgres://postgres:***@127.0.0.1:${port}/test (connection refused)`;
    for (const r of runs) expectFault(r, 4, text);
    for (const r of runs) expect(errorLine(r)).to.equal(errorLine(runs[0]!));
    // The cause and its stack, at debug level only.
    const debug = await cli(['dags', 'list'], { ...db, AIRTASKS_LOG_LEVEL: 'debug' });
    expect(debug.code).to.equal(4);
    expect(debug.stderr).to.match(/debug: caused by Error: connect ECONNREFUSED[^\n]*\n\s+at /);
  });

  it('a server that accepts and never answers: a timeout (exit 4), as the broker and as the database', async () => {
    const [broker, db, short] = await Promise.all([
      // The default wait is 10 s.
      cli(['worker', '-q', 'worker', '--gpus', 'none'], {
        AIRTASKS_BROKER_URL: `amqp://127.0.0.1:${silent.port}`,
      }),
      cli(['scheduler'], { AIRTASKS_DATABASE_URL: `postgres://postgres@127.0.0.1:${silent.port}/test` }),
      // AIRTASKS_CONNECT_TIMEOUT sets the wait.
      cli(['worker', '-q', 'worker', '--gpus', 'none'], {
        AIRTASKS_BROKER_URL: `amqp://127.0.0.1:${silent.port}`,
        AIRTASKS_CONNECT_TIMEOUT: '2',
      }),
    ]);
    expectFault(broker, 4, `The broker at amqp://127.0.0.1:${silent.port} did not answer within 10 s`);
    expectFault(
      db,
      4,
      `The database at postgres://postgres@127.0.0.1:${silent.port}/test did not answer within 10 s`,
    );
    expectFault(short, 4, 'did not answer within 2 s', 30_000);
    expect(errorLine(broker)).to.include('AIRTASKS_CONNECT_TIMEOUT');
  });

  it('a URL that points at another service: the protocol it did not speak (exit 4)', async () => {
    const pgPort = new URL(DATABASE_URL).port || '5432';
    const runs = await Promise.all([
      cli(['dags', 'list'], { AIRTASKS_DATABASE_URL: `postgres://postgres@127.0.0.1:${web.port}/test` }),
      cli(['worker', '-q', 'worker', '--gpus', 'none'], {
        AIRTASKS_BROKER_URL: `amqp://127.0.0.1:${web.port}`,
      }),
      cli(['worker', '-q', 'worker', '--gpus', 'none'], {
        AIRTASKS_BROKER_URL: `amqp://127.0.0.1:${pgPort}`,
      }),
    ]);
    expectFault(runs[0]!, 4, /The database at .* answered in another protocol than Postgres/);
    expectFault(runs[1]!, 4, /The broker at .* answered in another protocol than AMQP 0-9-1/);
    expectFault(runs[2]!, 4, /The broker at .* answered in another protocol than AMQP 0-9-1/);
    expect(errorLine(runs[0]!)).to.include('check that the database URL points at Postgres');
  });

  it('a database that refuses the user, or has no such database: what was refused (exit 4)', async () => {
    const u = new URL(DATABASE_URL);
    const user = new URL(DATABASE_URL);
    user.username = 'no_such_role';
    user.password = 's3cret';
    const db = new URL(DATABASE_URL);
    db.pathname = '/no_such_database';
    const [role, database] = await Promise.all([
      cli(['dags', 'list'], { AIRTASKS_DATABASE_URL: user.toString() }),
      cli(['dags', 'list'], { AIRTASKS_DATABASE_URL: db.toString() }),
    ]);
    expectFault(role, 4, `The database at postgres://no_such_role:***@${u.host}`);
    expect(errorLine(role)).to.match(/refused the login \(.*no_such_role.*\): check the user and password/);
    expectFault(database, 4, /refused the connection: database "no_such_database" does not exist; create it/);
  });

  it('a URL of the wrong kind (swapped, mistyped) is a usage error naming the flag (exit 2)', async () => {
    const [broker, db] = await Promise.all([
      cli(['worker', '-q', 'worker', '--gpus', 'none'], {
        AIRTASKS_BROKER_URL: 'postgres://u:s3cret@127.0.0.1/x',
      }),
      cli(['dags', 'list'], { AIRTASKS_DATABASE_URL: 'amqp://guest:s3cret@127.0.0.1:5672' }),
    ]);
    expectFault(
      broker,
      2,
      '--broker-url must start with amqp:// or amqps:// (RabbitMQ), got postgres://u:***@',
    );
    expectFault(db, 2, '--database-url must start with postgres:// or postgresql:// (Postgres)');
  });

  it('worker --gpus bogus: the flag and the forms it takes (exit 2)', async () => {
    const r = await cli(['worker', '-q', 'worker', '--gpus', 'bogus']);
    expectFault(r, 2, 'invalid GPU id "bogus" in --gpus: give device indexes or UUIDs separated by commas');
    expect(errorLine(r)).to.include('"all" or "none"');
  });

  it('a schema name or connect timeout that cannot be used is a usage error (exit 2)', async () => {
    const [schemaName, timeout] = await Promise.all([
      cli(['dags', 'list'], { AIRTASKS_DB_SCHEMA: 'Bad-Name' }),
      cli(['dags', 'list'], { AIRTASKS_CONNECT_TIMEOUT: 'soon' }),
    ]);
    expectFault(schemaName, 2, `invalid --schema "Bad-Name": use lower-case letters, digits and '_'`);
    expectFault(timeout, 2, 'AIRTASKS_CONNECT_TIMEOUT must be a number of seconds');
  });

  describe('RabbitMQ refusing the login', function () {
    before(async function () {
      await requireService(this, 'rabbitmq');
    });

    it('a database URL at the RabbitMQ port: not Postgres (exit 4)', async () => {
      const u = new URL(BROKER_URL);
      const r = await cli(['dags', 'list'], {
        AIRTASKS_DATABASE_URL: `postgres://postgres:s3cret@${u.hostname}:${u.port || 5672}/test`,
      });
      expectFault(
        r,
        4,
        /The database at postgres:\/\/postgres:\*\*\*@.* answered in another protocol than Postgres/,
      );
    });

    it('a wrong password or an unknown vhost: what was refused (exit 4)', async () => {
      const u = new URL(BROKER_URL);
      const wrong = new URL(BROKER_URL);
      wrong.password = 's3cret';
      const vhost = new URL(BROKER_URL);
      vhost.pathname = '/no_such_vhost';
      const [password, noVhost] = await Promise.all([
        cli(['worker', '-q', 'worker', '--gpus', 'none'], { AIRTASKS_BROKER_URL: wrong.toString() }),
        cli(['scheduler'], { AIRTASKS_BROKER_URL: vhost.toString() }),
      ]);
      const user = decodeURIComponent(u.username || 'guest');
      expectFault(password, 4, `refused the login of user "${user}" (ACCESS_REFUSED)`);
      expect(errorLine(password)).to.include('check the user and password of the broker URL');
      expectFault(noVhost, 4, `refused the virtual host "no_such_vhost"`);
    });
  });
});
