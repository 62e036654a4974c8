/** `why` tells the items of a mapped task that wait alike in one line (src/services/why.ts waitLines). */
import { expect } from 'chai';
import { waitLines } from '../../src/services/why.js';
import type { TaskWait } from '../../src/services/why-reasons.js';

const wait = (taskId: string, state: TaskWait['state'], kind: string, text: string): TaskWait =>
  ({ taskId, state, reason: { kind } as TaskWait['reason'], text }) as TaskWait;

describe('why lines', () => {
  it('tells items waiting alike once, with their count and range, and keeps other tasks and reasons apart', () => {
    const lines = waitLines([
      wait('fetch', 'success', 'running', 'done'),
      wait('m[0]', 'queued', 'pool_full', 'pool p is full'),
      wait('m[10]', 'queued', 'pool_full', 'pool p is full'),
      wait('m[2]', 'queued', 'pool_full', 'pool p is full'),
      wait('m[3]', 'running', 'running', 'running on w1'),
      wait('sum', 'none', 'upstream', 'waits for m'),
    ]);
    expect(lines).to.deep.equal([
      { taskId: 'fetch', state: 'success', text: 'done' },
      { taskId: 'm[0..10]', state: 'queued', text: 'pool p is full', items: 3 },
      { taskId: 'm[3]', state: 'running', text: 'running on w1', items: 1 },
      { taskId: 'sum', state: 'none', text: 'waits for m' },
    ]);
  });
});
