/**
 * The metric names are an interface: what the registry registers, what docs/metrics.md lists and what the
 * Grafana dashboard in docs/ queries must be the same names.
 */
import { readFile } from 'node:fs/promises';
import { expect } from 'chai';
import type { Queryable } from '../../src/engine/store/db.js';
import { addClusterGauges, createMetrics } from '../../src/services/metrics/index.js';

const doc = (name: string) => readFile(new URL(`../../docs/${name}`, import.meta.url), 'utf8');

describe('metric names', function () {
  it('are registered, documented and used by the dashboard alike', async () => {
    const m = createMetrics({ processMetrics: false });
    // Registering reads nothing: the store is only asked on a scrape.
    addClusterGauges(m, { db: {} as Queryable });
    const registered = m.registry.getMetricsAsArray().map((x) => (x as unknown as { name: string }).name);
    const documented = [...(await doc('metrics.md')).matchAll(/^\| `(airtasks_\w+)`/gm)].map((x) => x[1]!);
    expect([...registered].sort()).to.deep.equal([...documented].sort());
    for (const name of registered) expect(name).to.match(/^airtasks_[a-z_]+$/);

    const dashboard = JSON.parse(await doc('grafana-airtasks.json')) as {
      panels: Array<{ targets?: Array<{ expr: string }> }>;
    };
    const used = new Set(
      dashboard.panels
        .flatMap((p) => p.targets ?? [])
        .flatMap((t) =>
          [...t.expr.matchAll(/\b(airtasks_[a-z_]+?)(_bucket|_count|_sum)?\b/g)].map((x) => x[1]!),
        ),
    );
    expect([...used].sort()).to.deep.equal([...documented].sort());
  });
});
