import { expect } from 'chai';
import { dag } from '../../src/engine/dag/builder.js';
import { dagHash } from '../../src/engine/dag/serialize.js';
import { normalizeSchedule, toInstant } from '../../src/engine/dag/schedule.js';
import type { SerializedSchedule } from '../../src/core/dag-model.js';
import { DagValidationError } from '../../src/engine/dag/validate.js';
import { cronTimeAfter, planScheduledRuns, scheduledRunId } from '../../src/engine/scheduler/schedules.js';
import { findProject, resolvePausedOnCreation } from '../../src/services/config.js';

const D = (iso: string) => new Date(iso);
const isos = (ds: Date[]) => ds.map((d) => d.toISOString());

function sched(p: Partial<SerializedSchedule> = {}): SerializedSchedule {
  return {
    cron: '@daily',
    timezone: 'UTC',
    startDate: '2024-01-01T00:00:00.000Z',
    endDate: null,
    catchup: false,
    ...p,
  };
}

describe('schedules', () => {
  describe('planScheduledRuns (data-interval semantics)', () => {
    it('with catchup, creates a run for every complete interval since the start date', () => {
      const p = planScheduledRuns(sched({ catchup: true }), null, D('2024-01-04T05:00:00Z'));
      expect(isos(p.logicalDates)).to.deep.equal([
        '2024-01-01T00:00:00.000Z',
        '2024-01-02T00:00:00.000Z',
        '2024-01-03T00:00:00.000Z',
      ]);
      expect(p.nextLogicalDate?.toISOString()).to.equal('2024-01-04T00:00:00.000Z');
      expect(p.nextRunAt?.toISOString()).to.equal('2024-01-05T00:00:00.000Z');
    });

    it('without catchup, creates only the most recent complete interval', () => {
      const p = planScheduledRuns(sched(), null, D('2024-01-04T05:00:00Z'));
      expect(isos(p.logicalDates)).to.deep.equal(['2024-01-03T00:00:00.000Z']);
      expect(p.nextRunAt?.toISOString()).to.equal('2024-01-05T00:00:00.000Z');
    });

    it('without catchup, skips intervals missed since the last scheduled run', () => {
      const p = planScheduledRuns(sched(), D('2024-01-01T00:00:00Z'), D('2024-01-10T01:00:00Z'));
      expect(isos(p.logicalDates)).to.deep.equal(['2024-01-09T00:00:00.000Z']);
    });

    it('with catchup, continues after the last scheduled run', () => {
      const p = planScheduledRuns(
        sched({ catchup: true }),
        D('2024-01-05T00:00:00Z'),
        D('2024-01-08T00:00:00Z'),
      );
      expect(isos(p.logicalDates)).to.deep.equal(['2024-01-06T00:00:00.000Z', '2024-01-07T00:00:00.000Z']);
      expect(p.nextRunAt?.toISOString()).to.equal('2024-01-09T00:00:00.000Z');
    });

    it('creates the run for an interval exactly when the interval ends, not before', () => {
      const before = planScheduledRuns(sched(), null, D('2024-01-01T23:59:59.999Z'));
      expect(before.logicalDates).to.deep.equal([]);
      expect(before.nextLogicalDate?.toISOString()).to.equal('2024-01-01T00:00:00.000Z');
      expect(before.nextRunAt?.toISOString()).to.equal('2024-01-02T00:00:00.000Z');
      const at = planScheduledRuns(sched(), null, D('2024-01-02T00:00:00Z'));
      expect(isos(at.logicalDates)).to.deep.equal(['2024-01-01T00:00:00.000Z']);
    });

    it('is idempotent: planning again at the same time after the last run creates nothing', () => {
      const now = D('2024-01-04T05:00:00Z');
      const first = planScheduledRuns(sched({ catchup: true }), null, now);
      const again = planScheduledRuns(sched({ catchup: true }), first.logicalDates.at(-1)!, now);
      expect(again.logicalDates).to.deep.equal([]);
      expect(again.nextRunAt?.toISOString()).to.equal(first.nextRunAt?.toISOString());
    });

    it('starts the first interval at the first cron time at or after the start date', () => {
      const s = sched({ catchup: true, startDate: '2024-01-01T12:00:00.000Z' });
      expect(isos(planScheduledRuns(s, null, D('2024-01-03T01:00:00Z')).logicalDates)).to.deep.equal([
        '2024-01-02T00:00:00.000Z',
      ]);
      const off = sched({ startDate: '2024-01-01T12:00:00.000Z' });
      expect(planScheduledRuns(off, null, D('2024-01-02T06:00:00Z')).logicalDates).to.deep.equal([]);
    });

    it('creates nothing before a start date in the future', () => {
      const p = planScheduledRuns(sched({ startDate: '2030-01-01T00:00:00.000Z' }), null, D('2024-06-01Z'));
      expect(p.logicalDates).to.deep.equal([]);
      expect(p.nextLogicalDate?.toISOString()).to.equal('2030-01-01T00:00:00.000Z');
    });

    it('stops at the end date: no interval starts after it, and then no next run', () => {
      const s = sched({ catchup: true, endDate: '2024-01-02T00:00:00.000Z' });
      const p = planScheduledRuns(s, null, D('2024-01-10T00:00:00Z'));
      expect(isos(p.logicalDates)).to.deep.equal(['2024-01-01T00:00:00.000Z', '2024-01-02T00:00:00.000Z']);
      expect(p.nextRunAt).to.equal(null);
      expect(p.nextLogicalDate).to.equal(null);
      const after = planScheduledRuns(s, D('2024-01-02T00:00:00Z'), D('2024-01-10T00:00:00Z'));
      expect(after).to.deep.equal({ logicalDates: [], nextLogicalDate: null, nextRunAt: null });
    });

    it('bounds a long catchup per call; the next call goes on where it stopped', () => {
      const s = sched({ cron: '0 * * * *', catchup: true });
      const now = D('2024-03-01T00:00:00Z');
      const p = planScheduledRuns(s, null, now, { limit: 50 });
      expect(p.logicalDates).to.have.length(50);
      expect(p.logicalDates.at(-1)?.toISOString()).to.equal('2024-01-03T01:00:00.000Z');
      expect(p.nextRunAt! <= now).to.equal(true);
      const q = planScheduledRuns(s, p.logicalDates.at(-1)!, now, { limit: 50 });
      expect(q.logicalDates[0]?.toISOString()).to.equal('2024-01-03T02:00:00.000Z');
    });

    it('reads the cron expression in the time zone across a spring-forward DST change', () => {
      // 09:00 in Berlin is 08:00Z in winter (CET) and 07:00Z in summer (CEST, from 2024-03-31).
      const s = sched({
        cron: '0 9 * * *',
        timezone: 'Europe/Berlin',
        catchup: true,
        startDate: toInstant('2024-03-29', 'Europe/Berlin', 'startDate').toISOString(),
      });
      const p = planScheduledRuns(s, null, D('2024-04-02T12:00:00Z'));
      expect(isos(p.logicalDates)).to.deep.equal([
        '2024-03-29T08:00:00.000Z',
        '2024-03-30T08:00:00.000Z',
        '2024-03-31T07:00:00.000Z',
        '2024-04-01T07:00:00.000Z',
      ]);
      // The interval that contains the change is 23 hours long.
      const hours = p.logicalDates
        .slice(1)
        .map((d, i) => (d.getTime() - p.logicalDates[i]!.getTime()) / 3.6e6);
      expect(hours).to.deep.equal([24, 23, 24]);
    });

    it('runs an hourly schedule once per real hour across a fall-back DST change (no duplicate, no gap)', () => {
      const s = sched({
        cron: '0 * * * *',
        timezone: 'America/New_York',
        catchup: true,
        startDate: '2024-11-03T03:00:00.000Z',
      });
      const p = planScheduledRuns(s, null, D('2024-11-03T09:00:00Z'));
      // 01:00 EDT (05:00Z) and 01:00 EST (06:00Z) are both real hours.
      expect(isos(p.logicalDates)).to.deep.equal([
        '2024-11-03T03:00:00.000Z',
        '2024-11-03T04:00:00.000Z',
        '2024-11-03T05:00:00.000Z',
        '2024-11-03T06:00:00.000Z',
        '2024-11-03T07:00:00.000Z',
        '2024-11-03T08:00:00.000Z', // its interval ends at 09:00Z = now
      ]);
    });

    it('moves a daily time that does not exist on the spring-forward day to after the gap', () => {
      const s = sched({
        cron: '30 2 * * *',
        timezone: 'America/New_York',
        catchup: true,
        startDate: '2024-03-09T00:00:00.000Z',
      });
      const p = planScheduledRuns(s, null, D('2024-03-12T12:00:00Z'));
      expect(isos(p.logicalDates)).to.deep.equal([
        '2024-03-09T07:30:00.000Z', // 02:30 EST
        '2024-03-10T07:30:00.000Z', // 02:30 does not exist: 03:30 EDT
        '2024-03-11T06:30:00.000Z', // 02:30 EDT
      ]);
    });

    it('without catchup, picks the latest interval across a fall-back change, once', () => {
      const s = sched({ cron: '30 1 * * *', timezone: 'America/New_York' });
      const p = planScheduledRuns(s, D('2024-11-01T05:30:00Z'), D('2024-11-04T12:00:00Z'));
      expect(p.logicalDates).to.have.length(1);
      const ld = p.logicalDates[0]!;
      // 01:30 on Nov 3 in New York (EDT or EST), and the run after it is 01:30 EST on Nov 4.
      expect(['2024-11-03T05:30:00.000Z', '2024-11-03T06:30:00.000Z']).to.include(ld.toISOString());
      expect(p.nextLogicalDate?.toISOString()).to.equal('2024-11-04T06:30:00.000Z');
      expect(cronTimeAfter(s, ld).toISOString()).to.equal('2024-11-04T06:30:00.000Z');
    });
  });

  describe('scheduledRunId', () => {
    it('is the same for the same DAG and logical date, and differs across DAGs', () => {
      const t = D('2024-01-01T00:00:00Z');
      expect(scheduledRunId('a', t)).to.equal('scheduled__a__2024-01-01T00:00:00.000Z');
      expect(scheduledRunId('a', new Date(t))).to.equal(scheduledRunId('a', t));
      expect(scheduledRunId('b', t)).to.not.equal(scheduledRunId('a', t));
    });
  });

  describe('toInstant', () => {
    it('reads dates and date-times without an offset in the time zone', () => {
      expect(toInstant('2024-03-29', 'Europe/Berlin', 'x').toISOString()).to.equal(
        '2024-03-28T23:00:00.000Z',
      );
      expect(toInstant('2024-07-01T06:00', 'Europe/Berlin', 'x').toISOString()).to.equal(
        '2024-07-01T04:00:00.000Z',
      );
      expect(toInstant('2024-01-01', 'UTC', 'x').toISOString()).to.equal('2024-01-01T00:00:00.000Z');
    });

    it('keeps strings with an offset and Dates as they are', () => {
      expect(toInstant('2024-01-01T00:00:00+02:00', 'America/New_York', 'x').toISOString()).to.equal(
        '2023-12-31T22:00:00.000Z',
      );
      const d = new Date('2024-05-05T05:05:05Z');
      expect(toInstant(d, 'Asia/Tokyo', 'x').getTime()).to.equal(d.getTime());
    });

    it('refuses what is not a date, saying which option', () => {
      expect(() => toInstant('yesterday', 'UTC', 'startDate')).to.throw(
        /startDate "yesterday" is not a date/,
      );
      expect(() => toInstant('2024-02-30', 'UTC', 'startDate')).to.throw(/not a valid date/);
    });
  });

  describe('DAG options', () => {
    it('serialises the schedule normalised, with catchup off by default', () => {
      const d = dag('s', {
        schedule: '0 6 * * 1-5',
        timezone: 'Europe/Berlin',
        startDate: '2024-01-01',
        maxActiveRuns: 2,
        maxActiveTasks: 3,
      });
      d.bash('t', { command: 'true' });
      const s = d.serialize();
      expect(s.schedule).to.deep.equal({
        cron: '0 6 * * 1-5',
        timezone: 'Europe/Berlin',
        startDate: '2023-12-31T23:00:00.000Z',
        endDate: null,
        catchup: false,
      });
      expect([s.maxActiveRuns, s.maxActiveTasks]).to.deep.equal([2, 3]);
    });

    it('leaves a DAG without these options as it was (same keys, same hash)', () => {
      const d = dag('plain');
      d.bash('t', { command: 'true' });
      const s = d.serialize();
      expect(Object.keys(s).sort()).to.deep.equal(['dagId', 'description', 'fileloc', 'tags', 'tasks']);
      const with1 = dag('plain', { maxActiveRuns: 1 });
      with1.bash('t', { command: 'true' });
      expect(dagHash(with1.serialize())).to.not.equal(dagHash(s));
    });

    const bad: Array<[string, Parameters<typeof dag>[1], RegExp]> = [
      ['an invalid cron expression', { schedule: '61 * * * *', startDate: '2024-01-01' }, /invalid cron/],
      ['too few cron fields', { schedule: '* * *', startDate: '2024-01-01' }, /expected 5 fields/],
      ['an unknown preset', { schedule: '@sometimes', startDate: '2024-01-01' }, /unknown schedule preset/],
      [
        'an unknown time zone',
        { schedule: '@daily', timezone: 'Mars/Base', startDate: '2024-01-01' },
        /time zone/,
      ],
      ['a schedule without start date', { schedule: '@daily' }, /needs a startDate/],
      [
        'an end before the start',
        { schedule: '@daily', startDate: '2024-02-01', endDate: '2024-01-01' },
        /before/,
      ],
      ['catchup without a schedule', { catchup: true }, /needs a schedule/],
      ['maxActiveRuns 0', { maxActiveRuns: 0 }, /maxActiveRuns must be an integer >= 1/],
      ['a fractional maxActiveTasks', { maxActiveTasks: 1.5 }, /maxActiveTasks must be an integer >= 1/],
    ];
    for (const [what, opts, re] of bad) {
      it(`refuses ${what}, naming the DAG`, () => {
        let err: unknown;
        try {
          dag('my_dag', opts);
        } catch (e) {
          err = e;
        }
        expect(err).to.be.instanceOf(DagValidationError);
        expect((err as Error).message).to.match(/^DAG "my_dag": /);
        expect((err as Error).message).to.match(re);
      });
    }

    it('refuses a scheduled DAG whose params have no valid defaults, and accepts one whose do', () => {
      expect(() =>
        dag('needs_n', { schedule: '@daily', startDate: '2024-01-01', params: { n: { type: 'integer' } } }),
      ).to.throw(
        DagValidationError,
        /DAG "needs_n": scheduled runs get only the params' defaults.*\/n is required/,
      );
      expect(() =>
        dag('has_n', {
          schedule: '@daily',
          startDate: '2024-01-01',
          params: { n: { type: 'integer', default: 1 } },
        }),
      ).to.not.throw();
      // Without a schedule, required params are fine: a manual trigger gives them.
      expect(() => dag('manual_n', { params: { n: { type: 'integer' } } })).to.not.throw();
    });

    it('accepts presets and 6-field expressions with seconds', () => {
      expect(normalizeSchedule({ schedule: '@hourly', startDate: '2024-01-01' })?.cron).to.equal('@hourly');
      expect(normalizeSchedule({ schedule: '*/10 * * * * *', startDate: '2024-01-01' })?.cron).to.equal(
        '*/10 * * * * *',
      );
    });
  });

  describe('pausedOnCreation setting', () => {
    const project = (pausedOnCreation?: unknown) => ({
      ...findProject('/'),
      config: { dagsFolder: 'dags', queues: {}, pausedOnCreation } as never,
    });

    it('is false by default, taken from airtasks.json, and overridden by the environment', () => {
      expect(resolvePausedOnCreation(project(), {})).to.equal(false);
      expect(resolvePausedOnCreation(project(true), {})).to.equal(true);
      expect(resolvePausedOnCreation(project(true), { AIRTASKS_DAGS_PAUSED_ON_CREATION: 'false' })).to.equal(
        false,
      );
      expect(resolvePausedOnCreation(project(), { AIRTASKS_DAGS_PAUSED_ON_CREATION: '1' })).to.equal(true);
    });

    it('refuses values that are not booleans', () => {
      expect(() =>
        resolvePausedOnCreation(project(), { AIRTASKS_DAGS_PAUSED_ON_CREATION: 'maybe' }),
      ).to.throw(/must be true or false/);
      expect(() => resolvePausedOnCreation(project('yes'), {})).to.throw(/must be true or false/);
    });
  });
});
