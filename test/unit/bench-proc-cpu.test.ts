import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { cpuMsOf, cpuMsOfPids, parseStat } from '../../bench/proc-cpu.js';

describe('bench: CPU time from /proc', () => {
  it('sums utime, stime, cutime and cstime, past a name holding spaces and parentheses', () => {
    const line = '4242 (a (b) c) S 1 4242 4242 0 -1 4194368 1150 0 0 0 20 4 7 9 20 0 1 0 2630 222445568';
    expect(parseStat(line)).to.deep.equal({ pid: 4242, comm: 'a (b) c', ticks: 20 + 4 + 7 + 9 });
  });

  it('rejects lines that are not a stat line', () => {
    expect(parseStat('')).to.equal(null);
    expect(parseStat('12 (x) S 1 2')).to.equal(null);
  });

  it("reads this process's own line, and counts its CPU among the processes of its name", () => {
    const self = parseStat(readFileSync('/proc/self/stat', 'utf8'))!;
    expect(self.pid).to.equal(process.pid);
    // Spend some CPU so that this process's share is above zero ticks.
    const until = process.cpuUsage().user + 50_000;
    while (process.cpuUsage().user < until);
    expect(cpuMsOf(self.comm)).to.be.at.least(10);
    expect(cpuMsOf('no-such-process-name')).to.equal(0);
  });

  it('sums the CPU of the processes given by pid, a gone one as zero', () => {
    const until = process.cpuUsage().user + 50_000;
    while (process.cpuUsage().user < until);
    const own = cpuMsOfPids([process.pid]);
    expect(own).to.be.at.least(10);
    // No pid is this large (pid_max is at most 2^22).
    expect(cpuMsOfPids([process.pid, 99_999_999])).to.be.within(own, own + 20);
    expect(cpuMsOfPids([])).to.equal(0);
  });
});
