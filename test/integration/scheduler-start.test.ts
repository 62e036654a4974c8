/**
 * A scheduler schedules from the moment it starts: the dags folder is parsed in the background, so a
 * DAG file that hangs at import delays nothing but itself (it becomes an import error after the parse
 * timeout, and the files beside it are parsed all the same).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { PgQueueBroker } from '../../src/engine/broker/pg-queue.js';
import { DagProcessor } from '../../src/engine/dag/processor.js';
import { Scheduler } from '../../src/engine/scheduler/scheduler.js';
import { getDag, listImportErrors } from '../../src/engine/store/dags.js';
import { Worker } from '../../src/engine/worker/worker.js';
import {
  insertDagFile,
  removeDir,
  startRun,
  tempDir,
  waitFor,
  waitForRun,
  writeDagFile,
} from '../helpers/engine.js';
import { freshDb, requireService } from '../helpers/env.js';

const KNOWN = `
const d = dag('known', { defaults: { retries: 0 } });
d.bash('hello', { command: 'echo hello' });
export default d;
`;

const NEW = `
const d = dag('added_later');
d.bash('t', { command: 'true' });
export default d;
`;

const PARSE_TIMEOUT_MS = 8000;

describe('scheduler start with a DAG file that hangs at import', function () {
  this.timeout(60_000);
  let db: Awaited<ReturnType<typeof freshDb>>;
  let folder: string;
  let scheduler: Scheduler | undefined;
  let worker: Worker | undefined;

  before(async function () {
    await requireService(this, 'postgres');
    db = await freshDb();
    folder = await tempDir('airtasks-hang-');
    // ES modules, so that a top-level await is allowed.
    await writeFile(path.join(folder, 'package.json'), JSON.stringify({ type: 'module' }));
  });

  after(async () => {
    await worker?.stop();
    await scheduler?.stop();
    await db?.drop();
    await removeDir(folder);
  });

  it('runs known DAGs at once; the hanging file is an import error after the parse timeout', async () => {
    // Known from an earlier start: parsed and stored.
    await writeDagFile(folder, 'known.ts', KNOWN);
    await new DagProcessor(db, folder).sync();
    const known = (await insertDagFile(db, folder, 'known.ts')).get('known')!;
    // Then a file that never finishes importing ('a_' sorts it first), and a new good file after it.
    await writeDagFile(folder, 'a_hangs.ts', 'await new Promise(() => {});\n');
    await writeDagFile(folder, 'z_new.ts', NEW);

    const broker = new PgQueueBroker(db, { pollMs: 100 });
    scheduler = new Scheduler({
      db,
      broker,
      dagsFolder: folder,
      parseTimeoutMs: PARSE_TIMEOUT_MS,
      sweepIntervalMs: 500,
    });
    worker = new Worker({
      db,
      broker,
      queues: ['worker'],
      concurrency: 2,
      dagsFolder: folder,
      heartbeatMs: 300,
    });
    const started = Date.now();
    await scheduler.start();
    expect(Date.now() - started, 'start() waited for the dags folder').to.be.below(3000);
    await worker.start();

    const run = await waitForRun(db, await startRun(db, known), PARSE_TIMEOUT_MS);
    expect(run.state).to.equal('success');
    const ranAfter = Date.now() - started;
    expect(ranAfter, 'the run waited for the parse').to.be.below(PARSE_TIMEOUT_MS);
    expect(await listImportErrors(db), 'still parsing').to.deep.equal([]);

    // The hanging file: an import error after one parse timeout; the file after it is parsed too.
    const errors = await waitFor(
      async () => {
        const e = await listImportErrors(db);
        return e.length > 0 ? e : undefined;
      },
      'the import error of a_hangs.ts',
      3 * PARSE_TIMEOUT_MS,
    );
    const erroredAfter = Date.now() - started;
    expect(errors.map((e) => e.fileloc)).to.deep.equal(['a_hangs.ts']);
    expect(errors[0]!.message).to.match(/importing took longer than 8000 ms/);
    expect(erroredAfter).to.be.at.least(PARSE_TIMEOUT_MS);
    expect(erroredAfter, 'parsed once alone after the batch timed out').to.be.below(1.5 * PARSE_TIMEOUT_MS);
    // Recorded just after the import error (same scan): wait for it rather than race it.
    const later = await waitFor(async () => getDag(db, 'added_later'), 'added_later stored', 5000);
    expect(later).to.include({ dag_id: 'added_later' });
  });

  it('parses a file written after the first parse (the scans that follow it run)', async () => {
    expect(scheduler, 'started by the test above').to.not.equal(undefined);
    await writeDagFile(folder, 'written_later.ts', NEW.replace('added_later', 'written_later'));
    // Seen by the folder's watch; an explicit scan too, in case the watch missed it.
    await scheduler!.scanDags();
    const dag = await waitFor(async () => getDag(db, 'written_later'), 'written_later stored', 10_000);
    expect(dag).to.include({ dag_id: 'written_later' });
  });
});
