/**
 * The worker's end of the channels of its process host's threads (thread-protocol.ts): a Unix socket that
 * each thread connects to, proving with the host's token that it is one of them (a task's command, or
 * anything else on the machine, may find the socket too, and is refused). On Linux the socket is in the
 * abstract namespace: no file to leave behind, whatever user the host runs as; elsewhere it is a file in a
 * private folder of the host's user.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { onJsonLines, writeJsonLine } from './json-lines.js';
import type { TaskUser } from './task-user.js';
import type { ChannelAddress, FromThreadDirect, ToThreadDirect } from './thread-protocol.js';

/** How long a new connection has to say hello. */
const HELLO_MS = 5000;
/** The longest hello read. */
const MAX_HELLO = 1024;

export type ThreadReport = Exclude<FromThreadDirect, { t: 'hello' }>;

export class CallChannel {
  readonly address: ChannelAddress;
  private readonly server: Server;
  private readonly token: Buffer;
  /** The open channel of each thread, by the thread's id in the host. */
  private readonly conns = new Map<number, Socket>();
  /** Threads whose channel has closed: a thread id is never used twice in a host. */
  private readonly gone = new Set<number>();
  private readonly onClose = new Map<number, Array<() => void>>();
  private readonly dir: string | null = null;

  constructor(
    private readonly report: (thread: number, m: ThreadReport) => void,
    user: TaskUser | null,
  ) {
    this.token = randomBytes(32);
    let where: string;
    if (process.platform === 'linux')
      where = `\0airtasks-host-${process.pid}-${randomBytes(8).toString('hex')}`;
    else {
      this.dir = mkdtempSync(path.join(tmpdir(), 'airtasks-host-'));
      where = path.join(this.dir, 'calls');
    }
    this.server = createServer((s) => this.accept(s));
    this.server.on('error', () => undefined);
    // Bound at once (listen binds a Unix socket before it returns): the host's threads come later.
    this.server.listen(where);
    this.server.unref();
    if (this.dir && user) {
      chownSync(this.dir, user.uid, user.gid);
      chownSync(where, user.uid, user.gid);
    }
    this.address = { path: where, token: this.token.toString('hex') };
  }

  private accept(s: Socket) {
    // Calls keep the worker alive through the host's own channel, not these.
    s.unref();
    s.on('error', () => undefined);
    let thread: number | null = null;
    const late = setTimeout(() => s.destroy(), HELLO_MS).unref();
    onJsonLines<FromThreadDirect>(
      s,
      (m) => {
        if (thread !== null) {
          // A thread runs tasks' code: what it says is checked for shape, as any data from a task.
          if (isReport(m)) this.report(thread, m);
          else s.destroy();
          return;
        }
        clearTimeout(late);
        // Anything may connect: its first line is only data until it proves to be a thread's hello.
        const hello = m as Partial<Extract<FromThreadDirect, { t: 'hello' }>> | null;
        if (hello?.t !== 'hello' || !this.isToken(hello.token) || !this.isNew(hello.thread))
          return void s.destroy();
        thread = hello.thread;
        this.conns.set(thread, s);
        writeJsonLine(s, { t: 'welcome' } satisfies ToThreadDirect);
      },
      () => s.destroy(),
      () => (thread === null ? MAX_HELLO : Infinity),
    );
    s.on('close', () => {
      clearTimeout(late);
      if (thread === null || this.conns.get(thread) !== s) return;
      this.conns.delete(thread);
      this.gone.add(thread);
      for (const f of this.onClose.get(thread) ?? []) f();
      this.onClose.delete(thread);
    });
  }

  private isToken(token: unknown): boolean {
    if (typeof token !== 'string') return false;
    const given = Buffer.from(token, 'hex');
    return given.length === this.token.length && timingSafeEqual(given, this.token);
  }

  private isNew(thread: unknown): thread is number {
    return (
      Number.isSafeInteger(thread) && !this.conns.has(thread as number) && !this.gone.has(thread as number)
    );
  }

  /** Sends to the thread; false when its channel is not open. */
  send(thread: number, m: ToThreadDirect): boolean {
    const s = this.conns.get(thread);
    return !!s && writeJsonLine(s, m);
  }

  isOpen(thread: number): boolean {
    return this.conns.has(thread);
  }

  /** Runs `f` once the thread's channel has closed (all it sent read), or now if it is not open. */
  afterClose(thread: number, f: () => void) {
    if (!this.conns.has(thread)) return f();
    const fs = this.onClose.get(thread) ?? [];
    fs.push(f);
    this.onClose.set(thread, fs);
  }

  close() {
    this.server.close();
    for (const s of this.conns.values()) s.destroy();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

const isInt = (v: unknown) => Number.isSafeInteger(v);
const isText = (v: unknown) => typeof v === 'string';

/** Whether a thread's message has the shape of a ThreadReport. */
function isReport(m: unknown): m is ThreadReport {
  const r = m as Record<string, unknown> | null;
  if (typeof r !== 'object' || r === null || !isInt(r.id)) return false;
  switch (r.t) {
    case 'lines':
      return (
        Array.isArray(r.lines) &&
        r.lines.every((l) => Array.isArray(l) && (l[0] === 0 || l[0] === 1) && isText(l[1]))
      );
    case 'ask':
      return isInt(r.req) && isText(r.key);
    case 'done':
      return (
        typeof r.idle === 'boolean' &&
        (r.ok === true ? r.json === null || isText(r.json) : r.ok === false && isText(r.message))
      );
    case 'moved':
      return true;
    default:
      return false;
  }
}
