import { expect } from 'chai';
import { silentLogger } from '../../src/core/logger.js';
import { RunEndChecks } from '../../src/engine/worker/run-end-checks.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('RunEndChecks: telling the schedulers a run may have ended', () => {
  /** Records each check with the time it started, relative to the test's start. */
  function recorder(fail = false) {
    const t0 = performance.now();
    const checks: Array<{ at: number; runs: string[] }> = [];
    const check = async (runIds: string[]) => {
      checks.push({ at: performance.now() - t0, runs: runIds });
      if (fail) throw new Error('database unreachable');
    };
    return { checks, check, now: () => performance.now() - t0 };
  }

  it('checks a run at once when it was not checked lately, and runs of one turn together', async () => {
    const r = recorder();
    const e = new RunEndChecks(r.check, silentLogger, 40);
    e.mayHaveEnded('a');
    e.mayHaveEnded('b');
    await e.flush();
    expect(r.checks).to.have.length(1);
    expect(r.checks[0]!.runs).to.have.members(['a', 'b']);
    // At once: not after the interval (a loaded machine may still delay it some milliseconds).
    expect(r.checks[0]!.at).to.be.below(30);
  });

  it('asks again after the interval, once, for results that came during it (a trailing check)', async () => {
    const r = recorder();
    const e = new RunEndChecks(r.check, silentLogger, 40);
    e.mayHaveEnded('a');
    await sleep(5);
    const asked = r.now();
    for (let i = 0; i < 20; i++) e.mayHaveEnded('a');
    await sleep(10);
    expect(r.checks, 'no check within the interval').to.have.length(1);
    // The trailing check waits for the shared tick: up to one interval after the interval.
    await sleep(100);
    expect(r.checks).to.have.length(2);
    // The trailing check starts after every call it stands for: it sees their results committed.
    expect(r.checks[1]!.at).to.be.greaterThan(asked);
    expect(r.checks[1]!.at).to.be.at.least(38);
    await sleep(60);
    expect(r.checks, 'nothing more without new results').to.have.length(2);
  });

  it('checks a run after the interval, not at once, when its first result is unlikely to end it', async () => {
    const r = recorder();
    const e = new RunEndChecks(r.check, silentLogger, 40);
    e.mayHaveEnded('a', false);
    await sleep(5);
    e.mayHaveEnded('a', false);
    e.mayHaveEnded('a');
    await sleep(10);
    expect(r.checks, 'none at once').to.have.length(0);
    await sleep(100);
    expect(r.checks).to.have.length(1);
    expect(r.checks[0]!.at).to.be.at.least(38);
    // Checked lately or not, later results follow the usual rule: a result after the interval, at once.
    await sleep(50);
    e.mayHaveEnded('a', false);
    await sleep(5);
    expect(r.checks).to.have.length(2);
  });

  it('checks runs whose trailing checks fall due in the same interval together', async () => {
    const r = recorder();
    const e = new RunEndChecks(r.check, silentLogger, 40);
    // Start just after a tick of the shared clock: both checks below fall due before the next but one.
    await sleep(40 - (performance.now() % 40) + 2);
    e.mayHaveEnded('a', false);
    await sleep(10);
    e.mayHaveEnded('b', false);
    // Long enough for a tick later than planned (a slow timer on a loaded machine).
    await sleep(150);
    expect(r.checks).to.have.length(1);
    expect(r.checks[0]!.runs).to.have.members(['a', 'b']);
  });

  it('flush() runs the pending trailing checks now and waits for them', async () => {
    const r = recorder();
    const e = new RunEndChecks(r.check, silentLogger, 10_000);
    e.mayHaveEnded('a');
    e.mayHaveEnded('b');
    await sleep(5);
    e.mayHaveEnded('a');
    await e.flush();
    expect(r.checks).to.have.length(2);
    expect(r.checks[1]!.runs).to.deep.equal(['a']);
  });

  it('never throws when a check fails (the schedulers sweep ends the run)', async () => {
    const r = recorder(true);
    const e = new RunEndChecks(r.check, silentLogger, 40);
    e.mayHaveEnded('a');
    await e.flush();
    expect(r.checks).to.have.length(1);
  });
});
