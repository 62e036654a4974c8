/** The scheduler's pass loop and the runs a pass looks at (RunChanges), without a database. */
import { expect } from 'chai';
import { silentLogger } from '../../src/core/logger.js';
import { PassLoop } from '../../src/engine/scheduler/pass-loop.js';
import { RunChanges } from '../../src/engine/scheduler/run-changes.js';

import { sleep } from '../../src/core/backoff.js';

/** A loop whose passes are recorded (start and end times) and run `body`. */
function looper(body: (n: number, loop: PassLoop) => Promise<void> = () => sleep(20)) {
  const t0 = performance.now();
  const passes: Array<{ start: number; end: number }> = [];
  let failures = 0;
  const stop = new AbortController();
  const loop: PassLoop = new PassLoop(
    async () => {
      const p = { start: performance.now() - t0, end: NaN };
      passes.push(p);
      try {
        await body(passes.length, loop);
      } finally {
        p.end = performance.now() - t0;
      }
    },
    () => failures++,
    silentLogger,
    stop.signal,
  );
  return { loop, passes, failures: () => failures, stop };
}

describe('PassLoop: one scheduling pass at a time', () => {
  it('runs one more pass for any number of wakes during a pass', async () => {
    const { loop, passes } = looper();
    loop.wake();
    for (let i = 0; i < 5; i++) loop.wake();
    await loop.settled();
    expect(passes).to.have.length(2);
    expect(passes[1]!.start).to.be.at.least(passes[0]!.end);
  });

  it('runs another pass when a pass ended a run', async () => {
    const { loop, passes } = looper(async (n, l) => {
      await sleep(5);
      if (n === 1) l.passAgain();
    });
    loop.wake();
    await loop.settled();
    expect(passes).to.have.length(2);
  });

  it('paces a pass that read many task rows, not one that read few', async () => {
    const paced = looper(async (n, l) => {
      await sleep(150);
      l.countRows(3000);
      if (n === 1) l.passAgain();
    });
    paced.loop.wake();
    await paced.loop.settled();
    expect(paced.passes[1]!.start - paced.passes[0]!.end).to.be.at.least(100);

    const quick = looper(async (n, l) => {
      await sleep(150);
      l.countRows(100);
      if (n === 1) l.passAgain();
    });
    quick.loop.wake();
    await quick.loop.settled();
    expect(quick.passes[1]!.start - quick.passes[0]!.end).to.be.below(100);
  });

  it('retries a failed pass after half a second, once onFailure was called', async () => {
    const { loop, passes, failures } = looper(async (n) => {
      if (n === 1) throw new Error('connection lost');
    });
    loop.wake();
    await loop.settled();
    expect(failures()).to.equal(1);
    expect(passes).to.have.length(2);
    expect(passes[1]!.start - passes[0]!.end).to.be.at.least(450);
  });

  it('starts nothing once stopped, and lets the pass under way finish', async () => {
    const { loop, passes, stop } = looper(() => sleep(30));
    loop.wake();
    loop.wake();
    stop.abort();
    await loop.settled();
    expect(passes).to.have.length(1);
    expect(Number.isNaN(passes[0]!.end), 'the pass finished').to.equal(false);
    loop.wake();
    await loop.settled();
    expect(passes).to.have.length(1);
  });
});

describe('RunChanges: what the next pass looks at', () => {
  it('starts with a full sweep, then hands out the runs asked for once each', () => {
    let wakes = 0;
    const changes = new RunChanges(() => wakes++);
    expect(changes.take()).to.deep.equal({ full: true, runIds: [] });
    changes.recheck(['a', 'b']);
    changes.putBack(['b', 'c']);
    expect(wakes).to.equal(1);
    const taken = changes.take();
    expect(taken.full).to.equal(false);
    expect(taken.runIds).to.have.members(['a', 'b', 'c']);
    expect(changes.take()).to.deep.equal({ full: false, runIds: [] });
    changes.sweepAll();
    expect(wakes).to.equal(2);
    expect(changes.take().full).to.equal(true);
  });

  it('hands a run held by another scheduler to a later pass', async () => {
    let wakes = 0;
    const changes = new RunChanges(() => wakes++);
    changes.take();
    changes.later('held');
    expect(changes.take().runIds).to.deep.equal([]);
    await sleep(80);
    expect(wakes).to.equal(1);
    expect(changes.take().runIds).to.deep.equal(['held']);
  });

  it('knows there is no running run only from a full sweep that found none and started none', () => {
    const changes = new RunChanges(() => undefined);
    expect(changes.noRunningRuns).to.equal(false);
    changes.found(false, 0, 0);
    expect(changes.noRunningRuns).to.equal(false);
    changes.found(true, 0, 0);
    expect(changes.noRunningRuns).to.equal(true);
    changes.found(false, 0, 0);
    expect(changes.noRunningRuns, 'a pass over no changed run says nothing').to.equal(true);
    changes.found(false, 0, 1);
    expect(changes.noRunningRuns).to.equal(false);
    changes.found(true, 0, 0);
    changes.found(true, 2, 0);
    expect(changes.noRunningRuns).to.equal(false);
  });
});
