/**
 * Custom operators (defineOperator) from a project's plugins/ folder: the shipped http_check plugin, parsed
 * by the real DAG processor (a child process) and run by a worker against a local HTTP server.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { PgQueueBroker } from '../../src/engine/broker/pg-queue.js';
import { Scheduler } from '../../src/engine/scheduler/scheduler.js';
import { getDag, getVersion, listImportErrors } from '../../src/engine/store/dags.js';
import { getTaskInstance } from '../../src/engine/store/task-instances.js';
import { Worker } from '../../src/engine/worker/worker.js';
import { ROOT, tempDagsFolder } from '../helpers/cli.js';
import { startRun, waitFor, waitForRun } from '../helpers/engine.js';
import { freshDb, requireService } from '../helpers/env.js';

const SITE_DAG = `import { dag } from 'airtasks';
import { httpCheck } from '../plugins/http_check.js';

export const site = dag('site_checks', { defaults: { retries: 0 } });
httpCheck(site, 'healthy', { url: 'http://127.0.0.1:{{ conf.port }}/health', contains: 'ok' });
httpCheck(site, 'missing', { url: 'http://127.0.0.1:{{ conf.port }}/nope', timeout: '30s' });
`;

const BROKEN_DAG = `import { dag } from 'airtasks';
import { httpCheck } from '../plugins/http_check.js';

export const broken = dag('broken_checks');
httpCheck(broken, 'no_url', { expectStatus: 200 } as never);
`;

describe('custom operators from a plugins folder, through scheduler and worker', function () {
  this.timeout(60_000);
  let db: Awaited<ReturnType<typeof freshDb>>;
  let broker: PgQueueBroker;
  let scheduler: Scheduler;
  let worker: Worker;
  let project: Awaited<ReturnType<typeof tempDagsFolder>>;
  let server: http.Server;
  const requests: string[] = [];

  before(async function () {
    await requireService(this, 'postgres');
    db = await freshDb();
    // A project laid out as `airtasks init` makes it: dags/ and plugins/ side by side.
    project = await tempDagsFolder({});
    await mkdir(path.join(project.dir, 'dags'));
    await mkdir(path.join(project.dir, 'plugins'));
    await copyFile(
      path.join(ROOT, 'examples', 'plugins', 'http_check.ts'),
      path.join(project.dir, 'plugins', 'http_check.ts'),
    );
    await writeFile(path.join(project.dir, 'dags', 'site.ts'), SITE_DAG);
    await writeFile(path.join(project.dir, 'dags', 'broken.ts'), BROKEN_DAG);
    server = http.createServer((req, res) => {
      requests.push(req.url ?? '');
      res.writeHead(req.url === '/health' ? 200 : 404).end(req.url === '/health' ? 'all ok' : 'no');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    broker = new PgQueueBroker(db, { pollMs: 100 });
    const dagsFolder = path.join(project.dir, 'dags');
    scheduler = new Scheduler({ db, broker, dagsFolder, sweepIntervalMs: 500, dagScanIntervalMs: 500 });
    worker = new Worker({ db, broker, queues: ['worker'], concurrency: 2, dagsFolder, heartbeatMs: 300 });
    await scheduler.start();
    await worker.start();
  });

  after(async () => {
    await worker?.stop();
    await scheduler?.stop();
    await broker?.close();
    await db?.drop();
    server?.close();
    await project?.remove();
  });

  it('stores the operator and its arguments, and refuses invalid arguments when the file is parsed', async () => {
    const row = await waitFor(() => getDag(db, 'site_checks'), 'site_checks to be parsed');
    const v = await getVersion(db, row.hash);
    const healthy = v!.tasks.find((t) => t.taskId === 'healthy')!;
    expect(healthy.operator).to.equal('http_check');
    expect(healthy.args).to.deep.equal({ url: 'http://127.0.0.1:{{ conf.port }}/health', contains: 'ok' });
    expect(v!.tasks.find((t) => t.taskId === 'missing')!.timeoutMs).to.equal(30_000);
    const errors = await listImportErrors(db);
    expect(errors.map((e) => e.fileloc)).to.deep.equal(['broken.ts']);
    expect(errors[0]!.message).to.include(
      'task "no_url" in DAG "broken_checks" (http_check): url is required',
    );
  });

  it('runs the operator in the worker: templated arguments, output, and failure as a failed try', async () => {
    const row = await waitFor(() => getDag(db, 'site_checks'), 'site_checks to be parsed');
    const port = (server.address() as AddressInfo).port;
    const runId = await startRun(
      db,
      { dagId: row.dag_id, hash: row.hash, serialized: undefined as never },
      { port },
    );
    expect((await waitForRun(db, runId)).state).to.equal('failed');
    const healthy = await getTaskInstance(db, runId, 'healthy');
    expect(healthy!.state).to.equal('success');
    expect(healthy!.output).to.equal(200);
    const missing = await getTaskInstance(db, runId, 'missing');
    expect(missing!.state).to.equal('failed');
    expect(missing!.error).to.equal(`Error: GET http://127.0.0.1:${port}/nope answered 404, expected 200`);
    expect(requests.sort()).to.deep.equal(['/health', '/nope']);
  });
});
