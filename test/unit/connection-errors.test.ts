/**
 * How failures to connect are worded, from the errors pg and amqplib raise (as seen against real
 * servers: a refused port, a silent listener, an HTTP server, the other service's port, a wrong
 * password or vhost). The e2e suite (connection-faults) checks the same through the CLI.
 */
import { expect } from 'chai';
import { ExitCode, UnavailableError, ValidationError } from '../../src/core/errors.js';
import { resolveConnectTimeout } from '../../src/services/config.js';
import { checkServiceUrl, connectionFailure, redact } from '../../src/services/connection-errors.js';

const DB = 'postgres://app:s3cret@db.example:5432/prod';
const MQ = 'amqp://app:s3cret@mq.example:5672/jobs';

const err = (message: string, code?: string) => Object.assign(new Error(message), code ? { code } : {});
const db = (e: Error) => connectionFailure(e, 'database', DB, 10_000);
const mq = (e: Error) => connectionFailure(e, 'broker', MQ, 10_000);

describe('connection failures', () => {
  it('say which service, where (password hidden), and give exit code 4 with the cause kept', () => {
    const cause = err('connect ECONNREFUSED 10.0.0.1:5672', 'ECONNREFUSED');
    const e = mq(cause)!;
    expect(e).to.be.instanceOf(UnavailableError).and.include({
      dependency: 'broker',
      reason: 'unreachable',
      exitCode: ExitCode.UNAVAILABLE,
    });
    expect(e.cause).to.equal(cause);
    expect(e.message).to.equal(
      'Cannot reach the broker at amqp://app:***@mq.example:5672/jobs (connection refused): ' +
        'check that RabbitMQ runs there and that the broker URL names the right host and port.',
    );
    expect(db(err('getaddrinfo ENOTFOUND db.example', 'ENOTFOUND'))!.message).to.include(
      'Cannot reach the database at postgres://app:***@db.example:5432/prod (host "db.example" not found)',
    );
  });

  it('a server that never answers: a timeout, from either client', () => {
    for (const e of [
      db(err('timeout expired')),
      db(err('Connection terminated due to connection timeout')),
      db(err('timeout exceeded when trying to connect')),
      mq(err('connect ETIMEDOUT')),
      mq(err('no AMQP handshake within 10000 ms', 'ETIMEDOUT')),
    ]) {
      expect(e).to.include({ reason: 'timeout' });
      expect(e!.message).to.match(/did not answer within 10 s: .*AIRTASKS_CONNECT_TIMEOUT/);
    }
  });

  it('refused logins, a missing database or vhost, a busy server', () => {
    expect(db(err('password authentication failed for user "app"', '28P01'))).to.include({
      reason: 'credentials',
      message:
        'The database at postgres://app:***@db.example:5432/prod refused the login (password authentication ' +
        'failed for user "app"): check the user and password of the database URL.',
    });
    expect(db(err('role "x" does not exist', '28000'))).to.include({ reason: 'credentials' });
    expect(db(err('database "prod" does not exist', '3D000'))!.message).to.match(
      /refused the connection: database "prod" does not exist; create it or fix the database URL/,
    );
    expect(db(err('the database system is starting up', '57P03'))).to.include({ reason: 'busy' });
    const login = mq(
      err(
        'Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused"',
      ),
    );
    expect(login).to.include({ reason: 'credentials' });
    expect(login!.message).to.include('refused the login of user "app" (ACCESS_REFUSED)');
    const vhost = mq(err('Expected ConnectionOpenOk; got <ConnectionClose channel:0>'));
    expect(vhost).to.include({ reason: 'not-found' });
    expect(vhost!.message).to.include('refused the virtual host "jobs": it does not exist or user "app"');
  });

  it('another service at the address: the protocol it did not speak', () => {
    for (const e of [db(err('Connection terminated unexpectedly')), db(err('read ECONNRESET', 'ECONNRESET'))])
      expect(e!.message).to.include('answered in another protocol than Postgres');
    for (const e of [
      mq(err('Frame size 1345270062 exceeds maxFrameSize 67108864')),
      mq(err('Socket closed abruptly during opening handshake')),
    ]) {
      expect(e).to.include({ reason: 'protocol' });
      expect(e!.message).to.include('check that the broker URL points at RabbitMQ');
    }
  });

  it('anything else is not a connection failure and stays as it is', () => {
    expect(db(err('relation "dag_runs" does not exist', '42P01'))).to.equal(null);
    expect(mq(err('Channel closed'))).to.equal(null);
    expect(connectionFailure(undefined, 'database', DB, 1000)).to.equal(null);
  });

  it('a URL of the wrong kind is a usage error of its field; pg socket forms pass', () => {
    const thrown = (f: () => void) => {
      try {
        f();
      } catch (e) {
        return e as ValidationError;
      }
      throw new Error('expected a ValidationError');
    };
    const swapped = thrown(() => checkServiceUrl('broker', DB));
    expect(swapped)
      .to.be.instanceOf(ValidationError)
      .and.include({ field: 'brokerUrl', reason: 'malformed' });
    expect(swapped.messageFor('--broker-url')).to.equal(
      '--broker-url must start with amqp:// or amqps:// (RabbitMQ), got postgres://app:***@db.example:5432/prod',
    );
    expect(thrown(() => checkServiceUrl('database', 'http://x')).field).to.equal('databaseUrl');
    for (const ok of [DB, 'postgresql://h/db', '/var/run/postgresql db', 'socket:/tmp?db=x', undefined])
      checkServiceUrl('database', ok);
    checkServiceUrl('broker', 'amqps://h');
  });

  it('redacts passwords, also in the query string', () => {
    expect(redact('postgres://u:pw@h/db?password=pw&x=1')).to.equal('postgres://u:***@h/db?password=***&x=1');
    expect(redact(undefined)).to.equal('(none)');
    expect(redact('::nonsense')).to.equal('(unparseable URL)');
  });

  it('the connect timeout: given, else AIRTASKS_CONNECT_TIMEOUT seconds, else 10 s', () => {
    expect(resolveConnectTimeout(500, { AIRTASKS_CONNECT_TIMEOUT: '3' })).to.equal(500);
    expect(resolveConnectTimeout(undefined, { AIRTASKS_CONNECT_TIMEOUT: '2.5' })).to.equal(2500);
    expect(resolveConnectTimeout(undefined, {})).to.equal(10_000);
    expect(() => resolveConnectTimeout(undefined, { AIRTASKS_CONNECT_TIMEOUT: '0' })).to.throw(
      ValidationError,
      /AIRTASKS_CONNECT_TIMEOUT must be a number of seconds/,
    );
  });
});
