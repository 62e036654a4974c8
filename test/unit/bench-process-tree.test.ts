import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { expect } from 'chai';
import { processTree, treeMemory, TreePeak } from '../../bench/process-tree.js';

/**
 * A Node process that starts a grandchild holding `mib` MiB of touched memory, then says 'up' (with the
 * grandchild's pid) and waits for its stdin to close.
 */
async function startTree(mib: number): Promise<{ parent: ChildProcess; grandchild: number }> {
  const holder = `const b = Buffer.alloc(${mib} * 1024 * 1024, 1); process.send('held'); setInterval(() => b[0]++, 1000);`;
  const parent = spawn(
    process.execPath,
    [
      '-e',
      `const { spawn } = require('node:child_process');
       const c = spawn(process.execPath, ['-e', ${JSON.stringify(holder)}], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
       c.on('message', () => console.log('up ' + c.pid));
       process.stdin.on('end', () => { c.kill('SIGKILL'); process.exit(0); });
       process.stdin.resume();`,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const [line] = (await once(parent.stdout!, 'data')) as [Buffer];
  const m = /^up (\d+)/.exec(line.toString());
  if (!m) throw new Error(`unexpected output: ${line.toString()}`);
  return { parent, grandchild: Number(m[1]) };
}

async function end(parent: ChildProcess) {
  const exited = once(parent, 'exit');
  parent.stdin!.end();
  await exited;
}

describe('bench process tree memory', () => {
  it('finds every descendant and sums their memory, counting shared pages once in PSS', async () => {
    const { parent, grandchild } = await startTree(64);
    try {
      const tree = processTree(parent.pid!);
      expect(tree[0]).to.equal(parent.pid);
      expect(tree).to.include(grandchild);
      expect(tree).to.have.length(2);
      const m = treeMemory(parent.pid!);
      expect(m.processes).to.equal(2);
      // The grandchild's buffer alone is 64 MiB, touched.
      expect(m.rssMiB).to.be.greaterThan(64);
      expect(m.pssMiB).to.be.greaterThan(64);
      // Node's code is mapped by both processes: RSS counts it twice, PSS once.
      expect(m.pssMiB).to.be.lessThan(m.rssMiB);
      expect(treeMemory(grandchild).rssMiB).to.be.lessThan(m.rssMiB);
    } finally {
      await end(parent);
    }
  });

  it('keeps the peak of the sum after a descendant has ended', async () => {
    const { parent } = await startTree(48);
    const peak = new TreePeak(parent.pid!, 10_000);
    try {
      expect(peak.peak.processes).to.equal(2);
      const during = peak.peak.rssMiB;
      expect(during).to.be.greaterThan(48);
      await end(parent);
      // Gone: a sample now finds nothing, and the peak stays.
      expect(peak.sample()).to.deep.equal({ rssMiB: 0, pssMiB: 0, processes: 0 });
      expect(peak.peak.rssMiB).to.equal(during);
      expect(peak.peak.processes).to.equal(2);
    } finally {
      peak.stop();
      if (parent.exitCode === null) await end(parent);
    }
  });
});
