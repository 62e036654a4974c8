/**
 * Messages as lines of JSON on a stream socket (JSON.stringify never writes a raw newline), the framing of
 * Node's own IPC channel in its 'json' serialization.
 */
import type { Socket } from 'node:net';

/** Calls onMessage with each JSON value read from the socket, in order. */
export function onJsonLines<M>(
  socket: Socket,
  onMessage: (m: M) => void,
  onBadLine: (err: Error) => void,
  /** The longest line read before the next one, in characters, asked at each chunk. */
  maxLine: () => number = () => Infinity,
) {
  socket.setEncoding('utf8');
  let buf = '';
  socket.on('data', (chunk: string) => {
    let start = 0;
    let end = chunk.indexOf('\n');
    if (end === -1) {
      buf += chunk;
      if (buf.length > maxLine()) onBadLine(new Error(`a line of over ${maxLine()} characters`));
      return;
    }
    const lines: string[] = [];
    while (end !== -1) {
      lines.push(start === 0 ? buf + chunk.slice(0, end) : chunk.slice(start, end));
      start = end + 1;
      end = chunk.indexOf('\n', start);
    }
    buf = chunk.slice(start);
    for (const line of lines) {
      let m: M;
      try {
        m = JSON.parse(line) as M;
      } catch (err) {
        onBadLine(err as Error);
        return;
      }
      onMessage(m);
      if (socket.destroyed) return;
    }
  });
}

/** Writes one message (at once, when the socket's buffer has room: a thread may not yield again soon). */
export function writeJsonLine(socket: Socket, m: unknown): boolean {
  if (socket.destroyed || !socket.writable) return false;
  socket.write(`${JSON.stringify(m)}\n`);
  return true;
}
