import { expect } from 'chai';
import { lateEndNote } from '../../src/cli/late-end.js';

describe('lateEndNote (a try whose process ran on after it was ended for it)', () => {
  const lost = {
    tryNumber: 1,
    startedAt: '2026-12-01T10:00:00.000Z',
    endedAt: '2026-12-01T10:00:12.000Z',
    error: 'worker w1 lost: no heartbeat for 10s',
    processEndedAt: '2026-12-01T10:00:19.600Z',
  };

  it('says when the try was declared lost, when it really ended, and which try it ran beside', () => {
    const next = { tryNumber: 2, startedAt: '2026-12-01T10:00:12.000Z' };
    expect(lateEndNote(lost, [lost, next])).to.equal(
      'declared lost at 2026-12-01T10:00:12.000Z, really ended at 2026-12-01T10:00:19.600Z (7.6 s later), ' +
        'beside try 2 for 7.6 s',
    );
  });

  it('names no overlap when the next try started after the real end', () => {
    const next = { tryNumber: 2, startedAt: '2026-12-01T10:00:20.000Z' };
    expect(lateEndNote(lost, [next])).to.equal(
      'declared lost at 2026-12-01T10:00:12.000Z, really ended at 2026-12-01T10:00:19.600Z (7.6 s later)',
    );
  });

  it('is null for a try whose process ended in time, and plain "ended" for a try not lost', () => {
    expect(lateEndNote({ ...lost, processEndedAt: null }, [])).to.equal(null);
    expect(lateEndNote({ ...lost, error: 'cancelled by user' }, [])).to.match(/^ended at /);
  });
});
