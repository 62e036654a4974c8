/**
 * The process host's lifeline: it ends when its worker is gone, even when the worker died while the host
 * was still loading, before it listened for that (a host left behind then lived on, ignoring SIGTERM).
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const HOST = fileURLToPath(new URL('../../src/engine/operators/process-host-child.ts', import.meta.url));

describe('the process host, orphaned while it starts', function () {
  this.timeout(30_000);

  it('exits when its channel to the worker closed before it listened for that', async () => {
    const child = fork(HOST, ['airtasks-process-host'], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    // The worker gone at once: the channel closes while the host is still importing its modules.
    child.disconnect();
    const exited = once(child, 'exit').then(() => true);
    const ended = await Promise.race([exited, new Promise<false>((r) => setTimeout(() => r(false), 15_000))]);
    if (!ended) child.kill('SIGKILL');
    expect(ended, 'the host was still running 15 s after its worker was gone').to.equal(true);
  });
});
