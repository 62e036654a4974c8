/**
 * Evaluates an expression on the main thread of another Node process of this test, through its inspector
 * (opened with SIGUSR1; the process must run with --inspect-port=0 so that several never ask for one
 * port). A WebSocket client just big enough for one request and its answer: Node 20 has none built in.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';

/** Opens the inspector of `pid` and returns its WebSocket address, read from the process's output. */
export async function openInspector(pid: number, output: () => string, timeoutMs = 10_000): Promise<string> {
  const find = () => /Debugger listening on (ws:\/\/\S+)/.exec(output())?.[1];
  if (!find()) process.kill(pid, 'SIGUSR1');
  const end = Date.now() + timeoutMs;
  for (;;) {
    const url = find();
    if (url) return url;
    if (Date.now() > end) throw new Error(`process ${pid} opened no inspector within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs Runtime.evaluate; resolves with its result once the expression has run to its end. */
export function evaluate(wsUrl: string, expression: string, timeoutMs = 60_000): Promise<unknown> {
  const u = new URL(wsUrl);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer from ${wsUrl} within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (err: Error | null, v?: unknown) => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(v);
    };
    const req = http.request({
      host: u.hostname,
      port: u.port,
      path: u.pathname,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      },
    });
    req.on('error', (err) => done(err));
    req.on('response', (res) => done(new Error(`inspector refused the connection: ${res.statusCode}`)));
    req.on('upgrade', (_res, socket) => {
      let buf = Buffer.alloc(0);
      socket.on('error', (err) => done(err));
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        // Server frames are unmasked; the inspector sends text frames only.
        for (;;) {
          if (buf.length < 2) return;
          let len = buf[1]! & 0x7f;
          let off = 2;
          if (len === 126) [len, off] = [buf.readUInt16BE(2), 4];
          else if (len === 127) [len, off] = [Number(buf.readBigUInt64BE(2)), 10];
          if (buf.length < off + len) return;
          const msg = JSON.parse(buf.subarray(off, off + len).toString()) as {
            id?: number;
            result?: { result?: { value?: unknown }; exceptionDetails?: { text: string } };
          };
          buf = buf.subarray(off + len);
          if (msg.id !== 1) continue;
          socket.destroy();
          if (msg.result?.exceptionDetails) done(new Error(msg.result.exceptionDetails.text));
          else done(null, msg.result?.result?.value);
        }
      });
      const payload = JSON.stringify({ id: 1, method: 'Runtime.evaluate', params: { expression } });
      socket.write(clientFrame(Buffer.from(payload)));
    });
    req.end();
  });
}

/** A text frame as a client must send it: masked. */
function clientFrame(p: Buffer): Buffer {
  const mask = randomBytes(4);
  const head =
    p.length < 126
      ? Buffer.from([0x81, 0x80 | p.length])
      : p.length < 65536
        ? Buffer.from([0x81, 0x80 | 126, p.length >> 8, p.length & 0xff])
        : Buffer.concat([Buffer.from([0x81, 0x80 | 127]), u64(p.length)]);
  const body = Buffer.from(p.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([head, mask, body]);
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}
