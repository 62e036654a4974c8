/** A command's output lines, each cut at a bound (src/engine/operators/bounded-lines.ts). */
import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { onBoundedLines } from '../../src/engine/operators/bounded-lines.js';

async function linesOf(chunks: string[], max: number): Promise<string[]> {
  const input = new PassThrough();
  const lines: string[] = [];
  onBoundedLines(input, (l) => lines.push(l), max);
  const ended = new Promise((resolve) => input.on('end', resolve));
  for (const c of chunks) input.write(c);
  input.end();
  await ended;
  return lines;
}

describe('bounded lines', () => {
  it('splits as readline does: across chunks, \\r\\n (also split between chunks), \\r, empty lines', async () => {
    expect(await linesOf(['a\nb', 'c\r\n\nd'], 100)).to.deep.equal(['a', 'bc', '', 'd']);
    expect(await linesOf(['p 10%\rp 20%\r', '\ndone\r\r'], 100)).to.deep.equal([
      'p 10%',
      'p 20%',
      'done',
      '',
    ]);
  });

  it('cuts a long line at the bound, says how much was dropped, and reads the next line whole', async () => {
    const lines = await linesOf(['x'.repeat(7), 'y'.repeat(5), '\nnext\n'], 10);
    expect(lines).to.deep.equal(['xxxxxxxyyy [airtasks: line cut at 10 characters, 2 more dropped]', 'next']);
  });

  it('keeps memory bounded for a line of 50 MB without a newline', async () => {
    const input = new PassThrough();
    const lines: string[] = [];
    onBoundedLines(input, (l) => lines.push(l), 1000);
    const ended = new Promise((resolve) => input.on('end', resolve));
    const chunk = 'z'.repeat(1024 * 1024);
    for (let i = 0; i < 50; i++) input.write(chunk);
    input.end();
    await ended;
    expect(lines).to.have.length(1);
    expect(lines[0]!.length).to.be.lessThan(1100);
    expect(lines[0]).to.contain(`${50 * 1024 * 1024 - 1000} more dropped`);
  });
});
