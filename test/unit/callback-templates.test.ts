/** Bash callbacks render {{ error }}, {{ state }} and conf as data: an error that quotes hostile input runs nothing. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { dag } from '../../src/engine/dag/builder.js';
import { runCallback } from '../../src/engine/operators/callbacks.js';

describe('bash callbacks with hostile values', function () {
  this.timeout(20_000);
  let folder = '';
  before(() => (folder = mkdtempSync(path.join(tmpdir(), 'airtasks-callback-'))));
  after(() => rmSync(folder, { recursive: true, force: true }));

  it('prints an error message that quotes its input, and runs none of it', async () => {
    const marker = path.join(folder, 'pwned');
    const g = dag('callback_templates');
    g.bash('t', { command: 'true' });
    const serialized = g.serialize();
    for (const error of [`bad input: $(touch ${marker})`, `bad input: '; touch ${marker}; '`]) {
      const lines: string[] = [];
      const failed = await runCallback({
        spec: { bash: `echo "failed: {{ error }}"; echo {{ error }} "({{ state }}, {{ conf.who }})"` },
        key: 't.onFailure',
        dag: serialized,
        dagsFolder: folder,
        event: 'onFailure',
        state: 'failed',
        error,
        run: {
          dagId: 'callback_templates',
          runId: 'manual__1',
          taskId: 't',
          tryNumber: 1,
          logicalDate: new Date('2026-01-02T03:04:05Z'),
          conf: { who: '`touch ' + marker + '`' },
          outputs: new Map(),
        },
        forTask: true,
        log: { stdout: (l) => lines.push(l), stderr: (l) => lines.push(l), system: () => undefined },
        variable: () => Promise.resolve(undefined),
      });
      expect(failed).to.equal(null);
      expect(lines).to.deep.equal([`failed: ${error}`, `${error} (failed, \`touch ${marker}\`)`]);
      expect(existsSync(marker)).to.equal(false);
    }
  });
});
