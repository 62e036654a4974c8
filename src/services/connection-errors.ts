/**
 * What went wrong connecting to the database or the broker, read from the errors pg and amqplib raise.
 * One place, so that every command says the same thing about the same bad URL: exit 4, which service,
 * its address with the password hidden, and what to check.
 */
import { UnavailableError, ValidationError, type UnavailableReason } from '../core/errors.js';

export type Service = 'database' | 'broker';

const PRODUCT: Record<Service, string> = { database: 'Postgres', broker: 'RabbitMQ' };
const PROTOCOL: Record<Service, string> = { database: 'Postgres', broker: 'AMQP 0-9-1' };
const URL_FIELD: Record<Service, 'databaseUrl' | 'brokerUrl'> = {
  database: 'databaseUrl',
  broker: 'brokerUrl',
};
const SCHEMES: Record<Service, readonly string[]> = {
  database: ['postgres:', 'postgresql:', 'socket:'],
  broker: ['amqp:', 'amqps:'],
};

const UNREACHABLE: Record<string, (host: string) => string> = {
  ECONNREFUSED: () => 'connection refused',
  ENOTFOUND: (host) => `host "${host}" not found`,
  EAI_AGAIN: (host) => `host "${host}" not found (DNS did not answer)`,
  EHOSTUNREACH: () => 'no route to host',
  ENETUNREACH: () => 'network unreachable',
  EADDRNOTAVAIL: () => 'address not available',
};

/** Messages of a connection that something accepted and that never finished its handshake in time. */
const TIMEOUT =
  /^connect ETIMEDOUT|timeout expired|connection timeout|timeout exceeded when trying to connect|did not answer within/i;

/** Messages of a server that answered in another protocol, or hung up in the middle of the handshake. */
const PROTOCOL_BROKEN =
  /Connection terminated unexpectedly|Frame size \d+ exceeds|Socket closed abruptly during opening handshake|Frame on channel != 0 during handshake|Expected connection\.|Expected Connection(Start|Tune)|Unknown message code|SASL mechanism/i;

const TLS = /SSL|TLS|certificate|EPROTO|CERT_|self[- ]signed/i;

/**
 * Refuses a URL that cannot be one of this service's (another scheme: URLs swapped or mistyped) as a
 * usage error (exit 2), before any connection attempt. Only the scheme is read: pg also takes socket
 * paths and URLs that WHATWG URL refuses, and parses them itself.
 */
export function checkServiceUrl(service: Service, url: string | undefined): void {
  const scheme = url ? /^([a-z][a-z0-9+.-]*:)\/\//i.exec(url)?.[1]?.toLowerCase() : undefined;
  const ok =
    service === 'broker'
      ? SCHEMES.broker.includes(scheme ?? '')
      : !scheme || SCHEMES.database.includes(scheme);
  if (!url || ok) return;
  const want = SCHEMES[service]
    .filter((s) => s !== 'socket:')
    .map((s) => `${s}//`)
    .join(' or ');
  throw new ValidationError(
    URL_FIELD[service],
    'malformed',
    (name) => `${name} must start with ${want} (${PRODUCT[service]}), got ${redact(url)}`,
    { value: redact(url) },
  );
}

/**
 * The error a user can act on for a failure to connect to `service` at `url`; null when `err` is not
 * about connecting (an error in a statement, a bug), which the caller keeps as it is.
 */
export function connectionFailure(
  err: unknown,
  service: Service,
  url: string | undefined,
  timeoutMs: number,
): UnavailableError | null {
  const e = (err ?? {}) as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message.split('\n')[0]! : '';
  const at = `the ${service} at ${redact(url)}`;
  const The = at[0]!.toUpperCase() + at.slice(1);
  const fail = (reason: UnavailableReason, text: string) =>
    new UnavailableError(service, text, { cause: err, reason });
  const urlWord = `the ${service} URL`;

  const unreachable = UNREACHABLE[code];
  if (unreachable) {
    return fail(
      'unreachable',
      `Cannot reach ${at} (${unreachable(hostOf(url))}): check that ${PRODUCT[service]} runs there and ` +
        `that ${urlWord} names the right host and port.`,
    );
  }
  if (code === 'ETIMEDOUT' || TIMEOUT.test(message)) {
    return fail(
      'timeout',
      `${The} did not answer within ${Math.round(timeoutMs / 1000)} s: check that ${PRODUCT[service]}, ` +
        `and not another service, listens there and that no firewall holds the connection ` +
        `(AIRTASKS_CONNECT_TIMEOUT sets the wait, in seconds).`,
    );
  }
  if (service === 'database') {
    if (code === '28P01' || code === '28000')
      return fail(
        'credentials',
        `${The} refused the login (${message}): check the user and password of ${urlWord}.`,
      );
    if (code === '3D000')
      return fail('not-found', `${The} refused the connection: ${message}; create it or fix ${urlWord}.`);
    if (code === '57P03' || code === '53300')
      return fail('busy', `${The} takes no connections now (${message}): try again shortly.`);
  } else {
    if (/ACCESS[-_]REFUSED/.test(message))
      return fail(
        'credentials',
        `${The} refused the login of user "${userOf(url)}" (ACCESS_REFUSED): check the user and password of ${urlWord}.`,
      );
    // RabbitMQ closes the connection instead of opening a virtual host that is missing or not the user's.
    if (/Expected ConnectionOpenOk; got <ConnectionClose/.test(message))
      return fail(
        'not-found',
        `${The} refused the virtual host "${vhostOf(url)}": it does not exist or user "${userOf(url)}" ` +
          `may not use it; create it and grant access (rabbitmqctl add_vhost, set_permissions) or fix ${urlWord}.`,
      );
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || PROTOCOL_BROKEN.test(message)) {
    return fail(
      'protocol',
      `${The} closed the connection or answered in another protocol than ${PROTOCOL[service]} ` +
        `(${message || code}): check that ${urlWord} points at ${PRODUCT[service]}, not at another service.`,
    );
  }
  if (TLS.test(code) || TLS.test(message)) {
    return fail(
      'tls',
      `The TLS connection to ${at} failed (${message || code}): check its certificate, and whether the server expects TLS.`,
    );
  }
  return null;
}

/** A URL without its password, for messages and logs. */
export function redact(url: string | undefined): string {
  if (!url) return '(none)';
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    if (u.searchParams.has('password')) u.searchParams.set('password', '***');
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

function parsed(url: string | undefined): URL | null {
  try {
    return url ? new URL(url) : null;
  } catch {
    return null;
  }
}

function hostOf(url: string | undefined): string {
  return parsed(url)?.hostname ?? '?';
}

/** amqplib's default user when the URL names none. */
function userOf(url: string | undefined): string {
  const u = parsed(url);
  return u?.username ? decodeURIComponent(u.username) : 'guest';
}

function vhostOf(url: string | undefined): string {
  const path = parsed(url)?.pathname ?? '';
  return path.length > 1 ? decodeURIComponent(path.slice(1)) : '/';
}
