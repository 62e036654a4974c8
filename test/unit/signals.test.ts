/**
 * runDaemon: a stop signal that comes while a long-lived process starts is kept and acted on once it
 * has started (as PID 1 of a container, an unhandled SIGTERM would be dropped by the kernel).
 */
import { expect } from 'chai';
import { runDaemon } from '../../src/cli/signals.js';

const listeners = () => process.listenerCount('SIGTERM') + process.listenerCount('SIGINT');

describe('runDaemon', () => {
  it('stops a daemon that got SIGTERM while it started, as soon as it has started', async () => {
    const before = listeners();
    const events: string[] = [];
    let started!: () => void;
    const done = runDaemon(
      () =>
        new Promise((resolve) => {
          started = () => resolve({ stop: async () => void events.push('stop') });
        }),
      (m) => events.push(m),
    );
    await new Promise((r) => setImmediate(r));
    process.emit('SIGTERM', 'SIGTERM');
    expect(events).to.deep.equal(['SIGTERM while starting: stopping as soon as started']);
    started();
    await done;
    expect(events.at(-1)).to.equal('stop');
    expect(listeners()).to.equal(before);
  });

  it('runs a started daemon until a signal, then stops it', async () => {
    const before = listeners();
    let stops = 0;
    const done = runDaemon(
      async () => ({ stop: async () => void stops++ }),
      () => undefined,
    );
    await new Promise((r) => setImmediate(r));
    expect(stops).to.equal(0);
    process.emit('SIGTERM', 'SIGTERM');
    await done;
    expect(stops).to.equal(1);
    expect(listeners()).to.equal(before);
  });

  it('lets a failed start fail, leaving no handler behind', async () => {
    const before = listeners();
    const err = await runDaemon(
      () => Promise.reject(new Error('no database')),
      () => undefined,
    ).catch((e: Error) => e);
    expect((err as Error).message).to.equal('no database');
    expect(listeners()).to.equal(before);
  });
});
