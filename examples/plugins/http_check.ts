/**
 * A custom operator shared by the DAG files of a project: checks that a URL answers as expected.
 *
 *   import { httpCheck } from '../plugins/http_check.js';
 *   httpCheck(d, 'check_api', { url: 'https://{{ conf.host }}/health', expectStatus: 200, retries: 3 });
 *
 * The task fails (and is retried as configured) when the status differs or the body lacks `contains`;
 * its output is the status code.
 */
import { defineOperator } from 'airtasks';

export interface HttpCheckArgs {
  /** Templated URL. */
  url: string;
  /** Expected status code (default 200). */
  expectStatus?: number;
  /** Text the response body must contain. */
  contains?: string;
  /** Milliseconds before the request is given up (default 10000). */
  requestTimeout?: number;
}

export const httpCheck = defineOperator<HttpCheckArgs, number>({
  name: 'http_check',
  validate(args) {
    if (typeof args.url !== 'string' || args.url.trim() === '') throw new Error('url is required');
    const s = args.expectStatus;
    if (s !== undefined && !(Number.isInteger(s) && s >= 100 && s <= 599)) {
      throw new Error('expectStatus must be an HTTP status code (100-599)');
    }
  },
  async run(ctx) {
    const url = ctx.render(ctx.args.url);
    const expected = ctx.args.expectStatus ?? 200;
    const res = await fetch(url, {
      signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.args.requestTimeout ?? 10_000)]),
    });
    const body = await res.text();
    ctx.log(`GET ${url} -> ${res.status} (${body.length} bytes)`);
    if (res.status !== expected) throw new Error(`GET ${url} answered ${res.status}, expected ${expected}`);
    if (ctx.args.contains !== undefined && !body.includes(ctx.args.contains)) {
      throw new Error(`GET ${url}: the body does not contain ${JSON.stringify(ctx.args.contains)}`);
    }
    return res.status;
  },
});
