/**
 * The pg module, imported without loading Node's bundled fetch. When pg is loaded it asks whether it runs
 * in a Cloudflare Worker: it reads `navigator.userAgent`, and where there is no `navigator` (Node 20; Node
 * 21 added one) it constructs a `Response`, which loads undici: some 60 ms of CPU and 5 MiB in every
 * process that opens the database (the worker, the scheduler, each CLI command), for an answer that is
 * always no here. Node 20 is given Node 21's answer while pg loads (pg-navigator.ts), and nothing after.
 */
import { definedNavigator } from './pg-navigator.js';
import pg from 'pg';

if (definedNavigator) delete (globalThis as { navigator?: unknown }).navigator;

export default pg;
