/**
 * A headless daemon's log lines are written together, not one write each (a worker logs two lines a
 * task), yet reach the reader soon after they are logged while the process lives on, and all of them
 * when it exits.
 */
import { spawn } from 'node:child_process';
import { expect } from 'chai';

const LOGGER = new URL('../../src/core/logger.ts', import.meta.url).href;

/** Runs `body` in a Node process whose stderr is a pipe; its lines, each with when it was read. */
async function run(body: string): Promise<{ lines: Array<{ msg: string; at: number }>; stdout: string }> {
  const script = `import { readFileSync } from 'node:fs';
    import { createLogger } from ${JSON.stringify(LOGGER)};
    const log = createLogger({ json: true });
    const writes = () => Number(/syscw: (\\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))[1]);
    ${body}`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, AIRTASKS_LOG_LEVEL: 'info' },
  });
  const lines: Array<{ msg: string; at: number }> = [];
  let stdout = '';
  let rest = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    const parts = (rest + d.toString()).split('\n');
    rest = parts.pop()!;
    for (const p of parts) {
      // A crash's stack is not a log line.
      if (p.startsWith('{')) lines.push({ msg: (JSON.parse(p) as { msg: string }).msg, at: Date.now() });
    }
  });
  await new Promise((r) => child.on('close', r));
  return { lines, stdout };
}

describe('the JSON logger', function () {
  this.timeout(30_000);

  it('writes a burst of lines in a few writes, not one each', async () => {
    const { lines, stdout } = await run(`
      const before = writes();
      for (let i = 0; i < 100; i++) log.info('line ' + i);
      await new Promise((r) => setTimeout(r, 200));
      console.log(writes() - before);`);
    expect(lines.map((l) => l.msg)).to.deep.equal(Array.from({ length: 100 }, (_, i) => `line ${i}`));
    // The read of /proc/self/io is a read; console.log's one write comes after the count.
    expect(Number(stdout.trim())).to.be.below(5);
  });

  it('writes a lone line soon, while the process lives on', async () => {
    const { lines } = await run(`
      log.info('early');
      await new Promise((r) => setTimeout(r, 1500));
      log.info('late');`);
    expect(lines.map((l) => l.msg)).to.deep.equal(['early', 'late']);
    expect(lines[1]!.at - lines[0]!.at, 'the first line waited for the exit').to.be.above(1000);
  });

  it('writes what waits when the process exits or crashes', async () => {
    for (const end of ['process.exit(3)', "setTimeout(() => { throw new Error('boom'); }, 1)"]) {
      const { lines } = await run(`log.info('one'); log.warn('two'); ${end};`);
      expect(
        lines.map((l) => l.msg),
        end,
      ).to.deep.equal(['one', 'two']);
    }
  });
});
