/**
 * Task callbacks (run in the worker after the try's result is stored) and run callbacks (queued by the
 * scheduler as @onRun... task instances for a worker), through the real scheduler and a worker.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { readLogs } from '../../src/engine/store/logs.js';
import { getRun } from '../../src/engine/store/runs.js';
import { getTaskInstance } from '../../src/engine/store/task-instances.js';
import {
  insertDagFile,
  startEngine,
  startRun,
  waitFor,
  waitForRun,
  writeDagFile,
  type EngineHarness,
  type StoredDag,
} from '../helpers/engine.js';
import { requireService } from '../helpers/env.js';

const DAGS = `
export const failing = dag('cb_fail', {
  defaults: {
    retries: 1,
    retryDelay: '10ms',
    onFailure: 'echo "failed {{ task_id }} try {{ try_number }} state {{ state }}: {{ error }}"; echo "env $AIRTASKS_STATE"',
  },
  onRunFailure: async (ctx) => {
    await new Promise((r) => setTimeout(r, 10));
    ctx.log(\`run \${ctx.runId} \${ctx.state}: \${ctx.error}\`);
  },
  onRunSuccess: 'echo never',
});
const boom = failing.bash('boom', {
  command: 'exit 3',
  onRetry: (ctx) => ctx.log(\`retry after try \${ctx.tryNumber} (\${ctx.state}): \${ctx.error}\`),
});
failing.bash('fine', { command: 'echo fine', onSuccess: 'echo "success callback for {{ task_id }}"; exit 9' });
failing.bash('after', { command: 'true', upstream: boom });

export const ok = dag('cb_ok', {
  onRunSuccess: 'echo "run {{ run_id }} {{ state }}"; exit 4',
  onRunFailure: (ctx) => ctx.log('never'),
});
ok.node('x', { run: () => 1, onSuccess: (ctx) => { throw new Error('callback bug in ' + ctx.taskId); } });
`;

describe('callbacks through scheduler and worker', function () {
  this.timeout(60_000);
  let engine: EngineHarness;
  let db: EngineHarness['db'];
  let dags: Map<string, StoredDag>;

  before(async function () {
    await requireService(this, 'postgres');
    engine = await startEngine({
      setup: async (d, folder) => {
        await writeFile(path.join(folder, 'package.json'), JSON.stringify({ type: 'module' }));
        await writeDagFile(folder, 'callbacks.ts', DAGS);
        dags = await insertDagFile(d, folder, 'callbacks.ts');
      },
    });
    db = engine.db;
  });

  after(() => engine?.stop());

  const logText = async (runId: string, taskId: string, tryNumber?: number) =>
    (await readLogs(db, runId, taskId, { tryNumber })).map((l) => l.line).join('\n');

  /** Waits until the log of a task (or run callback) contains the text. */
  const logContains = (runId: string, taskId: string, text: string, tryNumber?: number) =>
    waitFor(
      async () => (await logText(runId, taskId, tryNumber)).includes(text),
      `"${text}" in ${taskId}'s log`,
    );

  it('runs onRetry, onFailure, onSuccess and onRunFailure, and a failing callback changes nothing', async () => {
    const runId = await startRun(db, dags.get('cb_fail')!);
    const run = await waitForRun(db, runId);
    expect(run.state).to.equal('failed');

    await logContains(
      runId,
      'boom',
      '[onRetry] retry after try 1 (up_for_retry): bash exited with code 3',
      1,
    );
    await logContains(
      runId,
      'boom',
      '[onFailure] failed boom try 2 state failed: bash exited with code 3',
      2,
    );
    await logContains(runId, 'boom', '[onFailure] env failed', 2);
    expect(await logText(runId, 'boom', 1)).not.to.include('[onFailure]');
    // A task that never ran calls no callback.
    expect((await getTaskInstance(db, runId, 'after'))!.state).to.equal('upstream_failed');
    expect(await logText(runId, 'after')).to.equal('');

    // The onSuccess callback exits 9: logged, and the task stays a success.
    await logContains(runId, 'fine', '[onSuccess] success callback for fine');
    await logContains(
      runId,
      'fine',
      "[onSuccess] callback failed: bash exited with code 9 (the task's result stays success)",
    );
    expect((await getTaskInstance(db, runId, 'fine'))!.state).to.equal('success');

    // The run callback ran in the worker, as its own task instance, after the run ended.
    const cb = await waitFor(async () => {
      const ti = await getTaskInstance(db, runId, '@onRunFailure');
      return ti?.state === 'success' && ti;
    }, 'the onRunFailure callback');
    expect(cb.worker_id).to.equal(engine.worker.id);
    expect(await logText(runId, '@onRunFailure')).to.include(
      `run ${runId} failed: failed tasks: boom (bash exited with code 3), after (upstream_failed)`,
    );
    expect(await getTaskInstance(db, runId, '@onRunSuccess')).to.equal(undefined);
    expect((await getRun(db, runId))!.state).to.equal('failed');
  });

  it('runs onRunSuccess; its failure is recorded on the callback, never on the run', async () => {
    const runId = await startRun(db, dags.get('cb_ok')!);
    expect((await waitForRun(db, runId)).state).to.equal('success');
    await logContains(runId, 'x', '[onSuccess] callback failed: Error: callback bug in x');
    expect((await getTaskInstance(db, runId, 'x'))!.state).to.equal('success');

    const cb = await waitFor(async () => {
      const ti = await getTaskInstance(db, runId, '@onRunSuccess');
      return ti?.state === 'failed' && ti;
    }, 'the onRunSuccess callback to end');
    expect(cb.error).to.equal('bash exited with code 4');
    expect(await logText(runId, '@onRunSuccess')).to.include(`run ${runId} success`);
    expect(await getTaskInstance(db, runId, '@onRunFailure')).to.equal(undefined);
    expect((await getRun(db, runId))!.state).to.equal('success');
  });
});
