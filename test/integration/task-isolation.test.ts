/**
 * What a task can reach (issue 16, point 2), with the worker in a process of its own: a bash task and a
 * node task print their environment, try to read the secret key file, and read /proc/<pid>/environ of
 * their ancestors; the database URL, the broker URL, the database password and the key are never found.
 * Without a task user only the task's own environment and its direct parent (the process host) are
 * checked: a task of the worker's own user can read what that user can (docs/security.md). With
 * `--run-as nobody` (tests run as root) every ancestor up to pid 1 is read. Also: a node task's synchronous
 * loop stopped by its timeout (its thread ended, the worker and other tasks unharmed, a retry works), and
 * ctx.variable from a node task.
 */
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { RabbitBroker } from '../../src/engine/broker/rabbitmq.js';
import { Scheduler } from '../../src/engine/scheduler/scheduler.js';
import { readLogs } from '../../src/engine/store/logs.js';
import { getTaskInstance, listTries } from '../../src/engine/store/task-instances.js';
import { setVariable } from '../../src/engine/store/variables.js';
import { Daemon } from '../helpers/cli.js';
import { insertDagFile, removeDir, startRun, tempDir, waitForRun, writeDagFile } from '../helpers/engine.js';
import { BROKER_URL, DATABASE_URL, freshDb, requireService, uniqueName } from '../helpers/env.js';

const WORKER = fileURLToPath(new URL('../helpers/worker-process.ts', import.meta.url));
const QUEUE = 'worker';
const KEY = 'Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1rZXktMDAw';
const DB_PASSWORD = 'isolation-db-password-1234';

/** A bash command that prints its environment, the key file, and the environ of each ancestor to pid 1. */
function bashPeek(keyFile: string, everyAncestor: boolean) {
  return [
    'echo ENV-START; env; echo ENV-END',
    // The worker's own user may read its key file: tried only with a task user.
    everyAncestor ? `cat '${keyFile}' 2>/dev/null && echo KEY-READ || echo KEY-UNREADABLE` : 'true',
    'p=$$',
    'while [ "$p" -gt 1 ]; do',
    '  pp=$(sed -n "s/^PPid:[[:space:]]*//p" /proc/$p/status)',
    '  echo "PROC $pp"',
    '  tr "\\0" "\\n" < /proc/$pp/environ 2>/dev/null || echo "ENVIRON-UNREADABLE $pp"',
    everyAncestor ? '  p=$pp' : '  p=1',
    'done',
  ].join('\n');
}

/** The same from a node task: its process is the process host itself (the task runs in one of its threads). */
function nodePeek(keyFile: string, everyAncestor: boolean) {
  return `(ctx) => {
    const fs = require_fs();
    ctx.log('NODE-ENV ' + JSON.stringify(process.env));
    if (${everyAncestor}) try { ctx.log('KEY ' + fs.readFileSync(${JSON.stringify(keyFile)}, 'utf8')); } catch (e) { ctx.log('KEY-UNREADABLE ' + e.code); }
    const environ = (pid) => { try { return fs.readFileSync('/proc/' + pid + '/environ', 'utf8').split('\\0').join('\\n'); } catch (e) { return 'ENVIRON-UNREADABLE ' + pid + ' ' + e.code; } };
    ctx.log('SELF ' + environ('self'));
    // Its direct parent is the process host, its own process: the rest only with a task user.
    let pid = ${everyAncestor} ? process.pid : 1;
    while (pid > 1) {
      const pp = Number(/PPid:\\s*(\\d+)/.exec(fs.readFileSync('/proc/' + pid + '/status', 'utf8'))[1]);
      ctx.log('PROC ' + pp + ' ' + environ(pp));
      pid = ${everyAncestor ? 'pp' : '1'};
    }
    return 'peeked';
  }`;
}

function dagSource(keyFile: string, everyAncestor: boolean) {
  return `
import * as fs from 'node:fs';
const require_fs = () => fs;
export const peek = dag('peek');
peek.bash('bash_peek', { command: ${JSON.stringify(bashPeek(keyFile, everyAncestor))} });
peek.node('node_peek', { run: ${nodePeek(keyFile, everyAncestor)} });

export const loop = dag('sync_loop', { defaults: { retries: 1, retryDelay: '3s' } });
loop.node('spin', { timeout: '5s', run: (ctx) => { if (ctx.tryNumber === 1) for (;;) {} return 'second try'; } });
loop.node('beside', { run: async () => { await new Promise((r) => setTimeout(r, 500)); return 'fine'; } });
loop.bash('bash_beside', { command: 'sleep 1; echo ok' });

export const vars = dag('vars');
vars.node('read', { run: async (ctx) => ({ plain: await ctx.variable('iso_plain'), none: (await ctx.variable('iso_missing')) ?? null }) });
`;
}

for (const runAs of [null, 'nobody'] as const) {
  describe(`what a task can reach (${runAs ? `--run-as ${runAs}` : "the worker's own user"})`, function () {
    this.timeout(120_000);
    let db: Awaited<ReturnType<typeof freshDb>>;
    let broker: RabbitBroker;
    let scheduler: Scheduler;
    let worker: Daemon;
    let folder: string;
    let dags: Awaited<ReturnType<typeof insertDagFile>>;
    const prefix = `${uniqueName('test')}.`;
    const dbUrl = (() => {
      const u = new URL(DATABASE_URL);
      if (!u.password) u.password = DB_PASSWORD;
      return u.href;
    })();

    before(async function () {
      if (runAs && process.getuid?.() !== 0) this.skip();
      await requireService(this, 'postgres');
      await requireService(this, 'rabbitmq');
      db = await freshDb();
      folder = await tempDir('airtasks-isolation-');
      // The task user reads the DAG files and starts in the folder; the key file stays the worker's.
      await chmod(folder, 0o755);
      const keyFile = path.join(folder, 'secret-key');
      await writeFile(keyFile, KEY, { mode: 0o600 });
      const file = await writeDagFile(folder, 'isolation.ts', dagSource(keyFile, runAs !== null));
      await chmod(file, 0o644);
      dags = await insertDagFile(db, folder, 'isolation.ts');
      broker = await RabbitBroker.connect({ url: BROKER_URL, prefix });
      scheduler = new Scheduler({ db, broker, dagsFolder: null, sweepIntervalMs: 500 });
      await scheduler.start();
      worker = new Daemon(
        [],
        {
          TEST_WORKER_DATABASE_URL: DATABASE_URL,
          TEST_WORKER_SCHEMA: db.schema,
          TEST_WORKER_BROKER_URL: BROKER_URL,
          TEST_WORKER_PREFIX: prefix,
          TEST_WORKER_QUEUE: QUEUE,
          TEST_WORKER_DAGS: folder,
          ...(runAs ? { TEST_WORKER_RUN_AS: runAs } : {}),
          // As a deployed worker has them, and copies under other names.
          AIRTASKS_DATABASE_URL: dbUrl,
          AIRTASKS_BROKER_URL: BROKER_URL,
          AIRTASKS_SECRET_KEY: KEY,
          AIRTASKS_SECRET_KEY_FILE: keyFile,
          DATABASE_URL: dbUrl,
          COPY_OF_THE_BROKER: `see ${BROKER_URL}`,
          PGPASSWORD: DB_PASSWORD,
        },
        { script: WORKER },
      );
      await worker.waitFor('test worker started', 60_000);
    });

    after(async () => {
      await worker?.stop('SIGKILL');
      await scheduler?.stop();
      await broker?.deleteQueues([QUEUE]);
      await broker?.close();
      await db?.drop();
      await removeDir(folder);
    });

    const logOf = async (runId: string, taskId: string) =>
      (await readLogs(db, runId, taskId)).map((l) => l.line).join('\n');

    it('a bash task and a node task find no database URL, broker URL, password or key', async () => {
      const runId = await startRun(db, dags.get('peek')!);
      expect((await waitForRun(db, runId, 90_000)).state).to.equal('success');
      const bash = await logOf(runId, 'bash_peek');
      const node = await logOf(runId, 'node_peek');
      // They did look: their own variables are there, the key file was refused or not asked.
      expect(bash).to.include('AIRTASKS_TASK_ID=bash_peek').and.include('PROC ');
      expect(node).to.include('"AIRTASKS_TASK_ID":"node_peek"').and.include('SELF ');
      for (const [what, text] of [
        ['bash', bash],
        ['node', node],
      ] as const) {
        for (const secret of [dbUrl, DATABASE_URL, BROKER_URL, DB_PASSWORD, KEY]) {
          expect(text, `${what} task's log`).to.not.include(secret);
        }
        expect(text).to.not.match(/AIRTASKS_(DATABASE_URL|BROKER_URL|SECRET_KEY)|PGPASSWORD/);
      }
      // The host's own malloc setting stays the host's: not in a command's environment nor a thread's.
      const bashEnv = bash.slice(bash.indexOf('ENV-START'), bash.indexOf('ENV-END'));
      const nodeEnv = /^NODE-ENV (.*)$/m.exec(node)![1]!;
      for (const env of [bashEnv, nodeEnv]) expect(env).to.not.match(/MALLOC_ARENA_MAX|AIRTASKS_HOST_MALLOC/);
      if (runAs) {
        expect(bash).to.include('KEY-UNREADABLE').and.include('ENVIRON-UNREADABLE');
        expect(node).to.include('KEY-UNREADABLE EACCES').and.include('ENVIRON-UNREADABLE');
        // Every ancestor was read or refused, up to pid 1.
        expect(bash).to.match(/PROC 1$/m);
        expect(node).to.match(/PROC 1 /);
      }
    });

    if (runAs) return;

    it("stops a node task's synchronous loop at its timeout; the worker and other tasks go on; the retry runs", async () => {
      const runId = await startRun(db, dags.get('sync_loop')!);
      const run = await waitForRun(db, runId, 90_000);
      const tries = await listTries(db, runId, 'spin');
      expect(run.state, JSON.stringify(tries) + (await logOf(runId, 'spin'))).to.equal('success');
      const [first, second] = tries;
      expect(first!.error).to.match(/timed out after 5000 ms/);
      expect(second).to.include({ try_number: 2 });
      expect((await getTaskInstance(db, runId, 'spin'))!.output).to.equal('second try');
      expect((await getTaskInstance(db, runId, 'beside'))!.output).to.equal('fine');
      expect((await getTaskInstance(db, runId, 'bash_beside'))!.output).to.equal('ok');
    });

    it('reads variables through the worker with ctx.variable', async () => {
      await setVariable(db, 'iso_plain', 'plain value');
      const runId = await startRun(db, dags.get('vars')!);
      expect((await waitForRun(db, runId, 60_000)).state).to.equal('success');
      expect((await getTaskInstance(db, runId, 'read'))!.output).to.deep.equal({
        plain: 'plain value',
        none: null,
      });
    });
  });
}
