/**
 * Who may use the dashboard, and protection against cross-site requests.
 *
 * - With a token (--token / AIRTASKS_WEB_TOKEN), every request but the login form and static assets needs
 *   it: `Authorization: Bearer <token>` (curl, scripts) or the session cookie a login gave (browsers).
 * - Every browser gets a session cookie (HttpOnly, SameSite=Strict); its CSRF token is an HMAC of the
 *   session id, read by the page from /api/v1/session (a cross-site page cannot read it).
 * - A POST is refused when the browser says it is cross-site (Sec-Fetch-Site) or its Origin is not this
 *   host; a POST from a browser (it sends Origin or a cookie) also needs the CSRF token header. Bodies
 *   are JSON only, which no cross-site form can send.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export const SESSION_COOKIE = 'airtasks_session';
export const CSRF_HEADER = 'x-airtasks-csrf';

export interface SecurityOptions {
  /** Null: no token (loopback, or behind the stack's proxy and its basic auth). */
  token: string | null;
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}

const same = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

export class Security {
  private readonly secret = randomBytes(32);
  /** Sessions that logged in with the token (kept in memory: a restart asks for the token again). */
  private readonly loggedIn = new Set<string>();

  constructor(private readonly o: SecurityOptions) {}

  get authRequired() {
    return this.o.token !== null;
  }

  csrfToken(session: string): string {
    return createHmac('sha256', this.secret).update(session).digest('base64url');
  }

  /** The request's session id, making one (and setting its cookie) when it has none. */
  session(req: FastifyRequest, reply: FastifyReply): string {
    const have = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    if (have && /^[A-Za-z0-9_-]{20,64}$/.test(have)) return have;
    const id = randomBytes(24).toString('base64url');
    reply.header('set-cookie', `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict`);
    return id;
  }

  private bearerOk(req: FastifyRequest): boolean {
    const h = req.headers.authorization;
    return !!this.o.token && !!h && h.startsWith('Bearer ') && same(h.slice(7), this.o.token);
  }

  authenticated(req: FastifyRequest): boolean {
    if (!this.o.token) return true;
    if (this.bearerOk(req)) return true;
    const s = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    return !!s && this.loggedIn.has(s);
  }

  /** Logs the session in when `token` is right. */
  login(session: string, token: string): boolean {
    if (!this.o.token || !same(token, this.o.token)) return false;
    this.loggedIn.add(session);
    return true;
  }

  /** Why a POST must be refused as possibly cross-site, or null. */
  crossSiteReason(req: FastifyRequest, needCsrfToken: boolean): string | null {
    const site = req.headers['sec-fetch-site'];
    if (typeof site === 'string' && site !== 'same-origin' && site !== 'none')
      return `a ${site} request may not act here`;
    const origin = req.headers.origin;
    if (origin !== undefined) {
      let host: string | null = null;
      try {
        host = new URL(origin).host;
      } catch {
        host = null;
      }
      if (host !== req.headers.host) return 'the request comes from another origin';
    }
    if (!needCsrfToken || this.bearerOk(req)) return null;
    const cookie = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    // Not a browser (no Origin, no cookie): curl or a script, which no other site can drive.
    if (origin === undefined && cookie === undefined && site === undefined) return null;
    const sent = req.headers[CSRF_HEADER];
    if (!cookie || typeof sent !== 'string' || !same(sent, this.csrfToken(cookie)))
      return `missing or wrong ${CSRF_HEADER} header (GET /api/v1/session gives it)`;
    return null;
  }

  /** Installs the checks on every request. */
  install(app: FastifyInstance) {
    app.addHook('onRequest', async (req, reply) => {
      const url = req.url.split('?')[0] ?? '';
      const open = url === '/login' || url.startsWith('/assets/');
      if (req.method === 'POST') {
        const why = this.crossSiteReason(req, url !== '/login');
        if (why) return reply.code(403).send({ error: { code: 'cross-site', message: `refused: ${why}` } });
      }
      if (open || this.authenticated(req)) return;
      if (url.startsWith('/api/') || url === '/metrics' || req.method !== 'GET')
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer')
          .send({
            error: { code: 'unauthorized', message: 'a token is needed: Authorization: Bearer <token>' },
          });
      return reply.redirect('/login');
    });
  }
}
