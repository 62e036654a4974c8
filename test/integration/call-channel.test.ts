/**
 * The worker's end of its process host threads' channels, with real sockets: anything on the machine may
 * connect to it, and whatever it sends first is refused unless it is a thread's hello with the host's
 * secret, without harm to the worker; a thread's hello is answered, once per thread.
 */
import { expect } from 'chai';
import { createConnection, type Socket } from 'node:net';
import { CallChannel } from '../../src/engine/operators/call-channel.js';

describe("the worker's end of the threads' channels", () => {
  let channel: CallChannel;
  const reports: unknown[] = [];
  before(() => (channel = new CallChannel((thread, m) => reports.push({ thread, m }), null)));
  after(() => channel.close());

  /** Sends lines on a new connection; resolves with what came back, once the worker closed it (or not). */
  function exchange(lines: string[], ms = 500): Promise<{ answer: string; closed: boolean }> {
    return new Promise((resolve) => {
      const s: Socket = createConnection(channel.address.path);
      let answer = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => (answer += d));
      s.on('error', () => undefined);
      const timer = setTimeout(() => {
        s.destroy();
        resolve({ answer, closed: false });
      }, ms);
      s.on('close', () => {
        clearTimeout(timer);
        resolve({ answer, closed: true });
      });
      s.write(lines.map((l) => `${l}\n`).join(''));
    });
  }

  it('refuses a first line that is not a hello with the secret, whatever it is', async () => {
    const { token } = channel.address;
    const hostile = [
      'null',
      '42',
      '"hello"',
      '[]',
      'not json',
      JSON.stringify({ t: 'hello' }),
      JSON.stringify({ t: 'hello', token: 'z'.repeat(64), thread: 1 }),
      JSON.stringify({ t: 'hello', token: token.slice(0, 62), thread: 1 }),
      JSON.stringify({ t: 'hello', token: `${token}00`, thread: 1 }),
      JSON.stringify({ t: 'hello', token, thread: 'one' }),
      JSON.stringify({ t: 'done', id: 1, ok: true, json: '1', idle: true }),
      'x'.repeat(5000),
    ];
    for (const line of hostile) {
      const r = await exchange([line]);
      expect(r, line.slice(0, 80)).to.deep.equal({ answer: '', closed: true });
    }
    expect(reports).to.deep.equal([]);
  });

  it("answers a thread's hello once, and passes on what the thread says after it", async () => {
    const hello = JSON.stringify({ t: 'hello', token: channel.address.token, thread: 7 });
    const done = JSON.stringify({ t: 'done', id: 3, ok: true, json: '1', idle: true });
    const first = await exchange([hello, done]);
    expect(first.answer).to.equal(`${JSON.stringify({ t: 'welcome' })}\n`);
    expect(reports).to.deep.equal([{ thread: 7, m: JSON.parse(done) }]);
    // Thread 7's channel has closed: the id is not taken again.
    expect(await exchange([hello])).to.deep.equal({ answer: '', closed: true });
  });

  it("closes a thread's channel on a message of the wrong shape, and passes none of it on", async () => {
    reports.length = 0;
    const bad = [
      'null',
      JSON.stringify({ t: 'lines', id: 1, lines: 'x' }),
      JSON.stringify({ t: 'lines', id: 1, lines: [5] }),
      JSON.stringify({ t: 'ask', id: 1, req: 1 }),
      JSON.stringify({ t: 'done', id: 1, ok: true, idle: true }),
      JSON.stringify({ t: 'done', id: 'x', ok: false, message: 'm', idle: false }),
      JSON.stringify({ t: 'call', id: 1 }),
    ];
    let thread = 100;
    for (const line of bad) {
      const hello = JSON.stringify({ t: 'hello', token: channel.address.token, thread: thread++ });
      const r = await exchange([hello, line]);
      expect(r, line).to.deep.equal({ answer: `${JSON.stringify({ t: 'welcome' })}\n`, closed: true });
    }
    expect(reports).to.deep.equal([]);
  });
});
