/** The environment every kind of task sees (src/engine/operators/task-env.ts). */
import { expect } from 'chai';
import {
  gpuEnv,
  hideFromTasks,
  isEngineVariable,
  taskEnv,
  workerEnv,
} from '../../src/engine/operators/task-env.js';
import type { OperatorContext } from '../../src/engine/operators/types.js';

function context(workerId?: string): Pick<OperatorContext, 'run' | 'workerId'> {
  return {
    run: {
      dagId: 'd',
      runId: 'manual__1',
      taskId: 't',
      tryNumber: 2,
      logicalDate: new Date('2026-01-02T03:04:05Z'),
      conf: { n: 1 },
      outputs: new Map(),
    },
    ...(workerId ? { workerId } : {}),
  };
}

describe('task environment', () => {
  it('names the try, and the worker when a worker runs it', () => {
    const run = {
      AIRTASKS_DAG_ID: 'd',
      AIRTASKS_RUN_ID: 'manual__1',
      AIRTASKS_TASK_ID: 't',
      AIRTASKS_TRY_NUMBER: '2',
      AIRTASKS_LOGICAL_DATE: '2026-01-02T03:04:05.000Z',
      AIRTASKS_CONF: '{"n":1}',
    };
    expect(taskEnv(context('w-1'))).to.deep.equal({ AIRTASKS_WORKER_ID: 'w-1', ...run });
    expect(taskEnv(context())).to.deep.equal(run);
  });

  it('shows a task on the host only the GPUs lent to it, in nvidia-smi order', () => {
    expect(gpuEnv({ gpuIds: ['0', '2'] })).to.deep.equal({
      CUDA_VISIBLE_DEVICES: '0,2',
      CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
      NVIDIA_VISIBLE_DEVICES: '0,2',
      AIRTASKS_GPUS: '0,2',
    });
    // Asked for none (gpus: 0): it sees none.
    expect(gpuEnv({ gpuIds: [] })).to.include({ CUDA_VISIBLE_DEVICES: '', NVIDIA_VISIBLE_DEVICES: 'void' });
    // Asked for no gpus at all, or no GPUs managed: the worker's environment as it is.
    expect(gpuEnv({})).to.deep.equal({});
  });

  it("leaves the secret key out of the worker's environment", () => {
    expect(workerEnv()).to.not.have.any.keys('AIRTASKS_SECRET_KEY', 'AIRTASKS_SECRET_KEY_FILE');
  });
});

describe("the worker's environment as tasks get it", () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    hideFromTasks('refresh-the-copy-' + Math.random());
  });

  it("holds none of the engine's settings, credentials or their values under other names", () => {
    const db = 'postgres://app:s3cret-db-password@db.example:5432/airtasks';
    Object.assign(process.env, {
      AIRTASKS_DATABASE_URL: db,
      AIRTASKS_BROKER_URL: 'amqp://rabbit:guest@mq.example:5672',
      AIRTASKS_SECRET_KEY_FILE: '/run/secrets/key',
      AIRTASKS_CONNECT_TIMEOUT: '5s',
      PGPASSWORD: 'x',
      PGHOST: 'db.example',
      DATABASE_URL: db,
      MY_COPY: `url=${db}`,
      JUST_THE_PASSWORD: 'guest',
      TASKS_OWN: 'kept',
      GUEST_BOOK: 'guests are welcome',
    });
    hideFromTasks('amqp://rabbit:guest@mq.example:5672');
    const env = workerEnv();
    expect(Object.keys(env).filter((k) => k.startsWith('AIRTASKS_') || k.startsWith('PG'))).to.deep.equal([]);
    expect(env).to.not.have.any.keys('DATABASE_URL', 'MY_COPY', 'JUST_THE_PASSWORD');
    expect(env).to.include({ TASKS_OWN: 'kept', GUEST_BOOK: 'guests are welcome', PATH: process.env.PATH });
    expect(isEngineVariable('ANY', 'prefix s3cret-db-password suffix')).to.equal(true);
  });

  it('leaves out a value registered later (a URL resolved from a file, the secret key)', () => {
    process.env.SOME_KEY_COPY = 'k'.repeat(43) + '=';
    expect(workerEnv()).to.have.property('SOME_KEY_COPY');
    hideFromTasks('k'.repeat(43) + '=');
    expect(workerEnv()).to.not.have.property('SOME_KEY_COPY');
  });
});
