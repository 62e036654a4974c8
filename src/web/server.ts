/**
 * `airtasks web`: one fastify process serving the dashboard's pages (a preact bundle built into
 * dist/web/assets by `npm run build`) and the JSON API, from one store connection pool and one broker
 * connection shared by every request.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance } from 'fastify';
import { AirtasksError, ExitCode } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { ConnectionOptions } from '../services/config.js';
import { changeStamp } from '../services/dashboard.js';
import { openEngineWaiting } from '../services/daemons.js';
import type { Engine } from '../services/engine.js';
import { registerApi } from './api.js';
import { registerMetrics } from './hooks.js';
import { LiveHub } from './live.js';
import { loginPage, shellPage } from './pages.js';
import { Security } from './security.js';

export interface WebOptions {
  connection: ConnectionOptions;
  /** The stack the swarm page shows (the deployed stack sets it; else the project's). */
  stack?: string;
  host?: string;
  port?: number;
  /** Required to bind a non-loopback address unless behindProxy. */
  token?: string | null;
  /** Exposed only through a proxy that authenticates (the stack's): no token needed on any address. */
  behindProxy?: boolean;
  logger: Logger;
  /** Use this open engine instead of opening one (standalone shares its own). */
  engine?: Engine;
}

export interface WebServer {
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export function isLoopback(host: string) {
  return LOOPBACK.test(host);
}

/** Where the built pages are: beside this module once built, else the checkout's dist (tests under tsx). */
export function assetsDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const dir of [path.join(here, 'assets'), path.resolve(here, '../../dist/web/assets')])
    if (existsSync(path.join(dir, 'app.js'))) return dir;
  throw new AirtasksError(
    'the dashboard is not built: run `npm run build` (it bundles the pages into dist/web/assets)',
    ExitCode.ERROR,
  );
}

export async function startWebServer(o: WebOptions): Promise<WebServer> {
  const host = o.host ?? '127.0.0.1';
  const token = o.token || null;
  if (!isLoopback(host) && !token && !o.behindProxy)
    throw new AirtasksError(
      `binding ${host} exposes the dashboard: give a token (--token or AIRTASKS_WEB_TOKEN), or --behind-proxy when only an authenticating proxy reaches it`,
      ExitCode.USAGE,
    );
  const assets = assetsDir();
  const waitOpts = { ...o.connection, logger: o.logger };
  const engine =
    o.engine ??
    // In a stack the database and broker may come up after it: it waits as the daemons do
    // (AIRTASKS_CONNECT_WAIT) rather than exit and be restarted.
    (await openEngineWaiting(waitOpts, { broker: true, logger: o.logger }).catch(async (err: unknown) => {
      // Without a broker the pages still work; the queue page says the depths are unknown.
      o.logger.warn({ err: (err as Error).message }, 'broker unavailable: queue depths will be unknown');
      return openEngineWaiting(waitOpts, { logger: o.logger });
    }));
  const conn: ConnectionOptions = { ...o.connection, engine };
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
  const security = new Security({ token });
  security.install(app);
  // JSON only (and the login form): a cross-site form can send text/plain, so it is not accepted at all.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) =>
    done(null, Object.fromEntries(new URLSearchParams(body as string))),
  );
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'same-origin');
    if (!reply.getHeader('content-security-policy'))
      reply.header(
        'content-security-policy',
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
      );
    return payload;
  });
  const live = new LiveHub(
    (topic) => changeStamp({ ...conn, ...(topic.startsWith('run:') ? { runId: topic.slice(4) } : {}) }),
    o.logger,
  );
  await app.register(fastifyStatic, { root: assets, prefix: '/assets/', index: false, maxAge: '1h' });
  app.get('/', async (req, reply) => {
    security.session(req, reply);
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(shellPage());
  });
  app.get('/login', async (_req, reply) => reply.type('text/html; charset=utf-8').send(loginPage(false)));
  app.post('/login', async (req, reply) => {
    const session = security.session(req, reply);
    const given = (req.body as { token?: unknown } | null)?.token;
    if (typeof given === 'string' && security.login(session, given)) return reply.redirect('/', 303);
    return reply.code(401).type('text/html; charset=utf-8').send(loginPage(true));
  });
  registerApi(app, { conn, security, live, logger: o.logger, ...(o.stack ? { stack: o.stack } : {}) });
  registerMetrics(app, conn);
  await app.listen({ host, port: o.port ?? 8080 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (o.port ?? 8080);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  o.logger.info({ url }, 'dashboard listening');
  return {
    url,
    app,
    async close() {
      live.close();
      await app.close();
      if (!o.engine) await engine.close();
    },
  };
}
