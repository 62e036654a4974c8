import { expect } from 'chai';
import type { SerializedSchedule } from '../../src/core/dag-model.js';
import { backfillLogicalDates } from '../../src/engine/scheduler/backfill-dates.js';
import { planScheduledRuns } from '../../src/engine/scheduler/schedules.js';

const D = (iso: string) => new Date(iso);
const isos = (ds: Date[]) => ds.map((d) => d.toISOString());
const sched = (p: Partial<SerializedSchedule> = {}): SerializedSchedule => ({
  cron: '@daily',
  timezone: 'UTC',
  startDate: '2024-01-01T00:00:00.000Z',
  endDate: null,
  catchup: false,
  ...p,
});

describe('backfillLogicalDates', () => {
  it('gives the logical dates from..to, both included, whose interval has ended', () => {
    const r = backfillLogicalDates(
      sched(),
      D('2024-01-03T00:00:00Z'),
      D('2024-01-06T00:00:00Z'),
      D('2024-02-01T00:00:00Z'),
      {
        max: 100,
      },
    );
    expect(isos(r.logicalDates)).to.deep.equal(
      ['03', '04', '05', '06'].map((d) => `2024-01-${d}T00:00:00.000Z`),
    );
    expect(r).to.include({ overLimit: false, notEnded: 0 });
  });

  it('is the dates the scheduler creates, for schedules across DST changes and with hashed fields', () => {
    const now = D('2024-11-20T00:00:00Z');
    for (const s of [
      sched({ cron: '0 * * * *', timezone: 'America/New_York', startDate: '2024-11-02T00:00:00.000Z' }),
      sched({ cron: '30 2 * * *', timezone: 'Europe/Berlin', startDate: '2024-03-25T00:00:00.000Z' }),
      sched({ cron: 'H H * * *', startDate: '2024-10-01T00:00:00.000Z' }),
      sched({ cron: '@weekly', startDate: '2024-01-01T00:00:00.000Z', endDate: '2024-06-30T00:00:00.000Z' }),
    ]) {
      const scheduler = planScheduledRuns({ ...s, catchup: true }, null, now, { limit: 5000, seed: 'dag_x' });
      const bf = backfillLogicalDates(s, D('2000-01-01T00:00:00Z'), now, now, { max: 5000, seed: 'dag_x' });
      expect(isos(bf.logicalDates), s.cron).to.deep.equal(isos(scheduler.logicalDates));
    }
  });

  it('has no runs before the start date or after the end date of the schedule', () => {
    const s = sched({ startDate: '2024-01-10T00:00:00.000Z', endDate: '2024-01-12T00:00:00.000Z' });
    const r = backfillLogicalDates(
      s,
      D('2024-01-01T00:00:00Z'),
      D('2024-01-31T00:00:00Z'),
      D('2024-03-01T00:00:00Z'),
      {
        max: 100,
      },
    );
    expect(isos(r.logicalDates)).to.deep.equal(['10', '11', '12'].map((d) => `2024-01-${d}T00:00:00.000Z`));
  });

  it('leaves intervals that have not ended to the scheduler, counting them', () => {
    const r = backfillLogicalDates(
      sched(),
      D('2024-01-01T00:00:00Z'),
      D('2024-01-10T00:00:00Z'),
      D('2024-01-05T12:00:00Z'),
      {
        max: 100,
      },
    );
    expect(r.logicalDates).to.have.length(4); // 1..4; the 5th ends on the 6th
    expect(r.notEnded).to.equal(6);
  });

  it('stops at the bound and says the range is over it', () => {
    const r = backfillLogicalDates(
      sched({ cron: '* * * * *' }),
      D('2024-01-01T00:00:00Z'),
      D('2024-12-31T00:00:00Z'),
      D('2025-01-01T00:00:00Z'),
      {
        max: 50,
      },
    );
    expect(r.logicalDates).to.have.length(50);
    expect(r.overLimit).to.equal(true);
    const exact = backfillLogicalDates(
      sched(),
      D('2024-01-01T00:00:00Z'),
      D('2024-01-31T00:00:00Z'),
      D('2025-01-01T00:00:00Z'),
      {
        max: 31,
      },
    );
    expect(exact).to.include({ overLimit: false });
    expect(exact.logicalDates).to.have.length(31);
  });
});
