import { expect } from 'chai';
import { summarizeChains } from '../../bench/b1-chain.js';
import { atLeast, atMost, formatRatio, quantile, ratioOf, type Figure } from '../../bench/stats.js';
import { jsonFigures, markdownTable, textTable } from '../../bench/table.js';

describe('bench statistics and table', () => {
  it('interpolates quantiles between ranks and ignores input order', () => {
    expect(quantile([3, 1, 2, 4], 0.5)).to.equal(2.5);
    expect(quantile([10, 0], 0.99)).to.be.closeTo(9.9, 1e-9);
    expect(quantile([5], 0.99)).to.equal(5);
    expect(Number.isNaN(quantile([], 0.5))).to.equal(true);
  });

  it('divides by the baseline, and has no ratio without a usable one', () => {
    const f: Figure = {
      bench: 'B',
      metric: 'm',
      value: 6,
      unit: 'ms',
      baseline: { name: 'floor', value: 2 },
    };
    expect(ratioOf(f)).to.equal(3);
    expect(Number.isNaN(ratioOf({ ...f, baseline: { name: 'floor', value: 0 } }))).to.equal(true);
    expect(Number.isNaN(ratioOf({ ...f, baseline: undefined }))).to.equal(true);
    expect(formatRatio(3)).to.equal('3.00x');
    expect(formatRatio(NaN)).to.equal('-');
  });

  it('judges targets, and a figure that could not be measured never meets one', () => {
    expect(atMost(3, 3, '').met).to.equal(true);
    expect(atMost(3.1, 3, '').met).to.equal(false);
    expect(atLeast(NaN, 1, '').met).to.equal(false);
    expect(atMost(NaN, 1, '').met).to.equal(false);
  });

  it('summarises chains: gaps pooled, start-to-start per link, trigger to first start', () => {
    const s = summarizeChains({
      runs: [
        {
          triggered: 0,
          links: [
            { start: 10, end: 11 },
            { start: 13, end: 14 },
            { start: 20, end: 21 },
          ],
        },
      ],
    });
    expect(s.perLink).to.equal(5); // (20 - 10) / 2
    expect(s.triggerToFirst).to.equal(10);
    expect(s.gapP50).to.equal(4); // gaps 2 and 6
  });

  it('prints every figure with its ratio, baseline and verdict', () => {
    const figures: Figure[] = [
      {
        bench: 'B1',
        metric: 'gap',
        value: 2,
        unit: 'ms',
        baseline: { name: 'pg commit', value: 0.5 },
        target: atMost(2, 3, '<= 3 ms'),
      },
      { bench: 'B4', metric: 'docker', value: NaN, unit: '', note: 'docker unavailable' },
    ];
    const text = textTable(figures);
    expect(text).to.match(/gap\s+2\.00 ms\s+4\.00x\s+pg commit \(0\.50\)\s+<= 3 ms\s+yes/);
    expect(text).to.include('docker unavailable');
    expect(markdownTable(figures).split('\n')).to.have.length(4);
    expect(jsonFigures(figures).map((f) => f.ratio)).to.deep.equal([4, null]);
  });
});
