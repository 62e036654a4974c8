/**
 * The process host's pool of threads for DAG-file functions, with real threads and a real DAG file: calls
 * given to a thread in a batch run once each, calls queued behind a long or stuck call are taken back and
 * run by another thread, a stopped call that had not begun never runs. The calls' results come on the
 * threads' channel to the worker's end of it (call-channel.ts), as in a worker.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CallChannel } from '../../src/engine/operators/call-channel.js';
import { ThreadPool } from '../../src/engine/operators/process-host-threads.js';
import { removeDir, tempDir, writeDagFile } from '../helpers/engine.js';
import { THREAD_DAG_SOURCE, threadCall, type ThreadDagTask } from '../helpers/thread-calls.js';

describe('the process host thread pool', function () {
  this.timeout(60_000);
  let folder: string;
  let pool: ThreadPool;
  let channel: CallChannel;
  type Done = { t: 'done'; ok: true; json: string | null } | { t: 'done'; ok: false; message: string };
  /** Each call's end, in the order they came. */
  const ended: Array<{ id: number; event: Done }> = [];
  let nextId = 1;

  before(async () => {
    folder = await tempDir();
    await writeDagFile(folder, 'pool.ts', THREAD_DAG_SOURCE);
    await writeDagFile(folder, 'other.ts', THREAD_DAG_SOURCE);
    const end = (id: number, event: Done) => {
      if (!doneOf(id)) ended.push({ id, event });
    };
    channel = new CallChannel((thread, m) => {
      // No variable is set.
      if (m.t === 'ask') channel.send(thread, { t: 'answer', id: m.id, req: m.req, value: null });
      if (m.t !== 'done') return;
      const { id, idle: _idle, ...event } = m;
      end(id, event);
    }, null);
    pool = new ThreadPool(channel.address, {
      done: (id, message) => end(id, { t: 'done', ok: false, message }),
      ended: (thread, began, message) =>
        channel.afterClose(thread, () => {
          for (const id of began) end(id, { t: 'done', ok: false, message });
        }),
    });
  });
  after(async () => {
    pool?.endAll();
    channel?.close();
    await removeDir(folder);
  });
  beforeEach(() => (ended.length = 0));

  function call(key: ThreadDagTask, runId: string, gate?: string, fileloc = 'pool.ts'): number {
    const id = nextId++;
    const c = threadCall(folder, fileloc, key, runId, gate);
    pool.call(id, c);
    return id;
  }

  async function until(what: string, ok: () => boolean, ms = 30_000) {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(ended)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const doneOf = (id: number) => ended.find((e) => e.id === id)?.event;

  it('starts no thread before the first call, one for it', async () => {
    // A thread and its loader hold tens of MiB, and every command the host forks copies the page tables of
    // the host's memory: a worker of commands and containers only never needs one.
    expect(pool.threadCount).to.equal(0);
    const first = call('short', 'first');
    await until('the first call', () => doneOf(first)?.ok === true);
    expect(pool.threadCount).to.equal(1);
  });

  it('gives a second DAG file to the idle thread of the first, not to a new thread', async () => {
    const first = call('short', 'file-1');
    await until('the first file', () => doneOf(first)?.ok === true);
    expect(pool.threadCount).to.equal(1);
    // Its 'warm' message follows the call's 'done': until then the thread counts as importing.
    await new Promise((r) => setTimeout(r, 200));
    const second = call('short', 'file-2', undefined, 'other.ts');
    await until('the second file', () => doneOf(second)?.ok === true);
    expect(doneOf(second)).to.deep.equal({ t: 'done', ok: true, json: JSON.stringify('file-2') });
    expect(pool.threadCount).to.equal(1);
  });

  it('runs a burst of calls once each, with their own results', async () => {
    const ids = Array.from({ length: 60 }, (_, i) => call('short', `burst-${i}`));
    await until('the burst', () => ended.length === ids.length);
    ids.forEach((id, i) =>
      expect(doneOf(id)).to.deep.equal({ t: 'done', ok: true, json: JSON.stringify(`burst-${i}`) }),
    );
  });

  it('takes back the calls queued behind a long call in the same batch: they run elsewhere before it ends', async () => {
    // Thread A is held by a first gate; the calls that come meanwhile go to thread B in one batch.
    const first = call('gate', 'gate-a', 'open-a');
    await until('the first gate to begin', () => existsSync(path.join(folder, 'gate-a')));
    const second = call('gate', 'gate-b', 'open-b');
    const shorts = Array.from({ length: 8 }, (_, i) => call('short', `behind-gate-${i}`));
    // B runs the second gate; A is freed and must get the calls B holds behind it.
    await until('the second gate to begin', () => existsSync(path.join(folder, 'gate-b')));
    await writeFile(path.join(folder, 'open-a'), '');
    await until('the calls behind the second gate', () => shorts.every((id) => doneOf(id)?.ok));
    expect(doneOf(second), 'the second gate is still running').to.equal(undefined);
    await writeFile(path.join(folder, 'open-b'), '');
    await until('both gates', () => doneOf(first)?.ok === true && doneOf(second)?.ok === true);
  });

  it('takes back the calls queued behind a synchronous loop, and a stopped call that had not begun never runs', async () => {
    const spin = call('spin', 'spin-0');
    const shorts = Array.from({ length: 6 }, (_, i) => call('short', `behind-spin-${i}`));
    // Stopped before any thread could take it.
    const stopped = call('short', 'stopped-0');
    pool.stop(stopped, 'cancelled');
    expect(doneOf(stopped)).to.deep.equal({ t: 'done', ok: false, message: 'stopped: cancelled' });
    await until('the calls behind the loop', () => shorts.every((id) => doneOf(id)?.ok));
    pool.stop(spin, 'timed out');
    await until('the loop', () => doneOf(spin) !== undefined);
    expect(doneOf(spin)).to.include({ ok: false });
    expect(existsSync(path.join(folder, 'stopped-0')), 'the stopped call ran').to.equal(false);
    // The file still has a thread, and it works.
    const after = call('short', 'after-spin');
    await until('a call after the loop', () => doneOf(after)?.ok === true);
  });
});
