import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import type { FastifyReply } from 'fastify';
import { silentLogger } from '../../src/core/logger.js';
import { LiveHub } from '../../src/web/live.js';

/** The part of a reply the hub writes to: the text of its event stream, and its close. */
function replyStub(): { reply: FastifyReply; text: () => string; close: () => void } {
  const raw = Object.assign(new EventEmitter(), {
    out: '',
    writeHead: () => raw,
    write: (s: string) => ((raw.out += s), true),
    end: () => undefined,
  });
  return {
    reply: { raw } as unknown as FastifyReply,
    text: () => raw.out,
    close: () => raw.emit('close'),
  };
}

const changes = (s: string) => s.split('event: change').length - 1;
const settle = () => new Promise((r) => setTimeout(r, 50));

describe('live updates (LiveHub)', () => {
  it('tells a page that just subscribed to fetch again, even when the stamp never moves', async () => {
    // What a page fetched before it subscribed may predate the stamp of the first reading: a run that
    // ended in between would otherwise stay shown as running.
    const hub = new LiveHub(async () => 'same', silentLogger);
    const a = replyStub();
    hub.subscribe('global', a.reply);
    await settle();
    expect(changes(a.text())).to.equal(1);
    // A second page on the same topic gets its own, and the first one no more.
    const b = replyStub();
    hub.subscribe('global', b.reply);
    await settle();
    expect(changes(b.text())).to.equal(1);
    expect(changes(a.text())).to.equal(1);
    a.close();
    b.close();
    hub.close();
  });

  it('tells every page when the stamp moves', async () => {
    let stamp = 'one';
    const hub = new LiveHub(async () => stamp, silentLogger);
    const a = replyStub();
    hub.subscribe('run:r', a.reply);
    await settle();
    stamp = 'two';
    await new Promise((r) => setTimeout(r, 1100));
    expect(changes(a.text())).to.equal(2);
    a.close();
    hub.close();
  });
});
