/**
 * A DAG-file function's call sent by the worker straight to the process host's thread that said it was idle
 * after the last call of the same file, with real threads and a real host: it runs once, its lines and
 * variable reads go over the thread's channel; a burst of the file's calls queues in that thread, and calls
 * queued behind a long one are taken back and run elsewhere (a stopped one never runs), the thread then
 * idle for the file's next call; where the thread turned out not to be idle (a batch of another file holds
 * it) the call goes to the pool instead and still runs once; a stopped call's thread is ended and the file's
 * next call gets another.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { directCallCount, startCall } from '../../src/engine/operators/process-host.js';
import type { CallEnd } from '../../src/engine/operators/process-host-protocol.js';
import { removeDir, tempDir, waitFor, writeDagFile } from '../helpers/engine.js';
import { THREAD_DAG_SOURCE, threadCall, type ThreadDagTask } from '../helpers/thread-calls.js';

describe('calls sent straight to an idle thread of the process host', function () {
  this.timeout(60_000);
  let folder: string;
  const lines: string[] = [];

  before(async () => {
    folder = await tempDir();
    await writeDagFile(folder, 'direct.ts', THREAD_DAG_SOURCE);
    await writeDagFile(folder, 'second.ts', THREAD_DAG_SOURCE);
    await writeDagFile(folder, 'third.ts', THREAD_DAG_SOURCE);
  });
  after(() => removeDir(folder));

  function call(key: ThreadDagTask, runId: string, gate?: string, fileloc = 'direct.ts') {
    return startCall(
      threadCall(folder, fileloc, key, runId, gate),
      {
        stdout: (l) => lines.push(l),
        stderr: (l) => lines.push(l),
        variable: (k) => Promise.resolve(k === 'greeting' ? `hello ${runId}` : undefined),
      },
      null,
    );
  }

  const ok = (runId: string): CallEnd => ({
    ok: true,
    json: JSON.stringify({ run: runId, v: `hello ${runId}` }),
  });

  it("sends a file's next calls to the thread that ran its last one, with their lines and variables", async () => {
    expect(await call('short', 'first').done).to.deep.equal(ok('first'));
    const before = directCallCount();
    for (let i = 0; i < 5; i++) expect(await call('short', `next-${i}`).done).to.deep.equal(ok(`next-${i}`));
    expect(directCallCount() - before).to.equal(5);
    for (let i = 0; i < 5; i++) expect(lines.some((l) => l.includes(`line of next-${i}`))).to.equal(true);
  });

  it("queues a file's calls in the thread running its last ones: each goes straight to it and runs once", async () => {
    expect(await call('short', 'warm-queue').done).to.deep.equal(ok('warm-queue'));
    const before = directCallCount();
    const calls = Array.from({ length: 8 }, (_, i) => call('short', `queued-${i}`));
    expect(directCallCount() - before, 'none went through the host').to.equal(8);
    const ends = await Promise.all(calls.map((c) => c.done));
    ends.forEach((e, i) => expect(e).to.deep.equal(ok(`queued-${i}`)));
  });

  it('takes back the calls queued behind a long call: they run elsewhere before it ends; a stopped one never runs', async () => {
    expect(await call('short', 'warm-long').done).to.deep.equal(ok('warm-long'));
    const before = directCallCount();
    const gate = call('gate', 'long', 'open-long');
    const behind = [call('short', 'behind-0'), call('short', 'behind-1')];
    const stopped = call('short', 'behind-stopped');
    expect(directCallCount() - before, "queued in the gate's thread").to.equal(4);
    await waitFor(() => existsSync(path.join(folder, 'long')), 'the gate to begin', 30_000, 20);
    stopped.stop('cancelled');
    expect((await stopped.done).ok).to.equal(false);
    for (const [i, c] of behind.entries()) expect(await c.done).to.deep.equal(ok(`behind-${i}`));
    await writeFile(path.join(folder, 'open-long'), '');
    expect(await gate.done).to.deep.equal({ ok: true, json: JSON.stringify('long') });
    expect(existsSync(path.join(folder, 'behind-stopped')), 'the stopped call never ran').to.equal(false);
  });

  it("takes the file's next call straight to the thread whose queued calls were all taken back", async () => {
    // A file of its own: no other thread has said it is idle for it.
    expect(await call('short', 'warm-back', undefined, 'third.ts').done).to.deep.equal(ok('warm-back'));
    const before = directCallCount();
    const gate = call('gate', 'long-back', 'open-back', 'third.ts');
    const stopped = call('short', 'back-stopped', undefined, 'third.ts');
    expect(directCallCount() - before, "queued in the gate's thread").to.equal(2);
    await waitFor(() => existsSync(path.join(folder, 'long-back')), 'the gate to begin', 30_000, 20);
    stopped.stop('cancelled');
    expect((await stopped.done).ok).to.equal(false);
    await writeFile(path.join(folder, 'open-back'), '');
    expect(await gate.done).to.deep.equal({ ok: true, json: JSON.stringify('long-back') });
    expect(await call('short', 'after-back', undefined, 'third.ts').done).to.deep.equal(ok('after-back'));
    expect(directCallCount() - before, 'the thread said it was idle once the gate ended').to.equal(3);
  });

  it('gives the pool a call whose thread a batch of another file holds: it runs once, elsewhere', async () => {
    expect(await call('short', 'learn').done).to.deep.equal(ok('learn'));
    // The thread that said it was idle for direct.ts is given second.ts by the pool and held there.
    const gate = call('gate', 'held', 'open-held', 'second.ts');
    await waitFor(() => existsSync(path.join(folder, 'held')), 'the gate to begin', 30_000, 20);
    const before = directCallCount();
    expect(await call('short', 'bounced').done).to.deep.equal(ok('bounced'));
    expect(directCallCount() - before, 'it was sent straight to the held thread').to.equal(1);
    await writeFile(path.join(folder, 'open-held'), '');
    expect(await gate.done).to.deep.equal({ ok: true, json: JSON.stringify('held') });
  });

  it("ends the thread of a stopped call sent straight to it, and the file's next call gets another", async () => {
    expect(await call('short', 'before-spin').done).to.deep.equal(ok('before-spin'));
    const before = directCallCount();
    const spin = call('spin', 'spin');
    expect(directCallCount() - before).to.equal(1);
    await waitFor(() => existsSync(path.join(folder, 'spin')), 'the loop to begin', 30_000, 20);
    spin.stop('timed out');
    const end = await spin.done;
    expect(end.ok).to.equal(false);
    expect(await call('short', 'after-spin').done).to.deep.equal(ok('after-spin'));
  });
});
