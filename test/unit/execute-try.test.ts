/** One try with its operator (engine/execute-try.ts), as a worker and `dags test` run it. */
import { expect } from 'chai';
import { executeTry, tryFailure } from '../../src/engine/execute-try.js';
import { registerOperator } from '../../src/engine/operators/registry.js';
import { TaskFailure, type OperatorContext, type TaskLog } from '../../src/engine/operators/types.js';
import { serialized, task } from './fixtures.js';

/** An operator that returns what `run` returns (or throws what it throws), under a name of its own. */
function operator(name: string, run: (ctx: OperatorContext) => Promise<unknown>) {
  registerOperator({ name, execute: async (ctx) => ({ output: await run(ctx), exitCode: 0 }) });
}

function lines(): TaskLog & { all: string[] } {
  const all: string[] = [];
  return { all, stdout: (l) => all.push(l), stderr: (l) => all.push(l), system: (l) => all.push(l) };
}

function context(operatorName: string, timeoutMs: number | null = null) {
  const t = task('t', [], { operator: operatorName, timeoutMs });
  const abort = new AbortController();
  const ctx: OperatorContext = {
    dag: serialized([t]),
    task: t,
    run: {
      dagId: 'd',
      runId: 'r',
      taskId: 't',
      tryNumber: 1,
      logicalDate: new Date(),
      conf: {},
      outputs: new Map(),
    },
    log: lines(),
    signal: abort.signal,
    dagsFolder: '.',
    variable: async () => undefined,
  };
  return { ctx, abort };
}

describe('executeTry', () => {
  it("returns the operator's result", async () => {
    operator('et_ok', async () => ({ rows: 3 }));
    const { ctx, abort } = context('et_ok');
    expect(await executeTry(ctx, abort, 1024)).to.deep.equal({ output: { rows: 3 }, exitCode: 0 });
  });

  it('fails an output over the cap, saying what to do', async () => {
    operator('et_big', async () => 'x'.repeat(2000));
    const { ctx, abort } = context('et_big');
    const err = await executeTry(ctx, abort, 1024).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(TaskFailure);
    expect((err as Error).message).to.equal(
      "the task's output is 2002 bytes, over the cap of 1024 bytes: store large data elsewhere and return a reference",
    );
  });

  it('fails an output that is not JSON', async () => {
    operator('et_fn', async () => () => 1);
    const { ctx, abort } = context('et_fn');
    const err = await executeTry(ctx, abort, 1024).catch((e: unknown) => e);
    expect((err as Error).message).to.equal('the task returned a value that is not JSON-serialisable');
  });

  it("stops the operator at the task's timeout", async () => {
    operator(
      'et_slow',
      (ctx) =>
        new Promise((_, reject) =>
          ctx.signal.addEventListener('abort', () =>
            reject(new TaskFailure(`stopped: ${ctx.signal.reason}`)),
          ),
        ),
    );
    const { ctx, abort } = context('et_slow', 20);
    const err = await executeTry(ctx, abort, 1024).catch((e: unknown) => e);
    expect((err as Error).message).to.equal('stopped: timed out after 20 ms');
  });
});

describe('tryFailure', () => {
  it('keeps a TaskFailure and says it in the log', () => {
    const log = lines();
    const f = new TaskFailure('bash exited with code 4', 4);
    expect(tryFailure(f, log)).to.equal(f);
    expect(log.all).to.deep.equal(['failed: bash exited with code 4']);
  });

  it('makes any other error a TaskFailure with its message; no log yet, nothing said', () => {
    const f = tryFailure(new TypeError('x is not a function'), null);
    expect(f).to.be.instanceOf(TaskFailure);
    expect(f.message).to.equal('x is not a function');
  });
});
