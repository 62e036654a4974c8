import { expect } from 'chai';
import { toMs } from '../../src/core/duration.js';
import type { Duration } from '../../src/core/duration.js';

describe('toMs', () => {
  describe('numbers', () => {
    it('passes non-negative finite numbers through as milliseconds', () => {
      expect(toMs(0)).to.equal(0);
      expect(toMs(1)).to.equal(1);
      expect(toMs(1500)).to.equal(1500);
      expect(toMs(2.5)).to.equal(2.5);
    });

    for (const bad of [-1, -0.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      it(`rejects ${bad} with a TypeError naming the field`, () => {
        expect(() => toMs(bad, 'retryDelay')).to.throw(
          TypeError,
          /^retryDelay must be a non-negative number of ms/,
        );
      });
    }
  });

  describe('strings', () => {
    const cases: Array<[Duration, number]> = [
      ['0ms', 0],
      ['500ms', 500],
      ['0s', 0],
      ['2s', 2000],
      ['1.5s', 1500],
      ['5m', 300_000],
      ['0.5m', 30_000],
      ['1h', 3_600_000],
      ['24h', 86_400_000],
      ['2.5ms', 3], // rounded to whole milliseconds
      ['0.0004s', 0],
    ];
    for (const [input, ms] of cases) {
      it(`"${input}" is ${ms} ms`, () => {
        expect(toMs(input)).to.equal(ms);
      });
    }

    it('always returns an integer number of milliseconds for text', () => {
      expect(Number.isInteger(toMs('0.3333s'))).to.equal(true);
      expect(toMs('0.3333s')).to.equal(333);
    });

    const bad = [
      '',
      '5',
      's',
      '5 s',
      ' 5s',
      '5s ',
      '5sec',
      '5S',
      '1d',
      '-1s',
      '+1s',
      '.5s',
      '5.s',
      '1e3ms',
      '5m5s',
      '5ms\n',
    ];
    for (const input of bad) {
      it(`rejects ${JSON.stringify(input)}`, () => {
        expect(() => toMs(input as Duration, 'timeout')).to.throw(
          TypeError,
          /^timeout ".*" is not a duration like/s,
        );
      });
    }

    it('quotes the bad input and uses "duration" as the default label', () => {
      expect(() => toMs('ten seconds' as Duration)).to.throw(
        TypeError,
        'duration "ten seconds" is not a duration',
      );
    });
  });
});
