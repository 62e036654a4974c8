/**
 * /metrics over HTTP for the scheduler, worker and standalone (`--metrics-port`): node's own server, since
 * one read-only path needs no framework. Binds 127.0.0.1 unless told otherwise; anything but GET or HEAD
 * /metrics answers 404 or 405.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AirtasksError, ExitCode } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { metricsResponse, type AirtasksMetrics } from './registry.js';

export interface MetricsServer {
  /** http://host:port/metrics, with the port really bound (for port 0, the one chosen). */
  readonly url: string;
  close(): Promise<void>;
}

export async function serveMetrics(o: {
  metrics: AirtasksMetrics;
  port: number;
  host?: string;
  logger?: Logger;
}): Promise<MetricsServer> {
  const host = o.host ?? '127.0.0.1';
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics')
      return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return void res
        .writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' })
        .end('method not allowed\n');
    metricsResponse(o.metrics).then(
      ({ contentType, body }) => {
        res.writeHead(200, { 'content-type': contentType });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: Error) => {
        o.logger?.warn({ err: err.message }, 'collecting metrics failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('collecting metrics failed\n');
      },
    );
  });
  server.keepAliveTimeout = 65_000; // longer than Prometheus' scrape interval: scrapes reuse connections
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new AirtasksError(
          `cannot serve metrics on ${host}:${o.port}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.message}`,
          ExitCode.USAGE,
          { cause: err },
        ),
      ),
    );
    server.listen(o.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`;
  o.logger?.info({ url }, 'serving metrics');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
