/**
 * A command's output read as lines, each cut at a bound: readline keeps a line whole however long it is,
 * so one 600 MB line without a newline took the process host (and every task of its worker) down.
 */
import type { Readable } from 'node:stream';

/** The longest line kept, in characters; the rest of a longer line is dropped and counted. */
export const MAX_LINE_CHARS = 1024 * 1024;

/**
 * Calls onLine for each line of input, ended by "\n", "\r\n" or "\r" as readline ends them (a progress bar's
 * "\r" makes lines), each at most `max` characters followed by a note of what was cut.
 */
export function onBoundedLines(input: Readable, onLine: (line: string) => void, max = MAX_LINE_CHARS) {
  input.setEncoding('utf8');
  const lineBreak = /[\r\n]/g;
  let buf = '';
  let dropped = 0;
  // A "\r" ended the last chunk: a "\n" starting the next one belongs to it.
  let skipLf = false;
  const flush = () => {
    onLine(dropped > 0 ? `${buf} [airtasks: line cut at ${max} characters, ${dropped} more dropped]` : buf);
    buf = '';
    dropped = 0;
  };
  input.on('data', (chunk: string) => {
    let start = skipLf && chunk.startsWith('\n') ? 1 : 0;
    skipLf = false;
    for (;;) {
      lineBreak.lastIndex = start;
      const end = lineBreak.exec(chunk)?.index ?? -1;
      const stop = end === -1 ? chunk.length : end;
      const room = Math.max(0, max - buf.length);
      buf += chunk.slice(start, Math.min(stop, start + room));
      dropped += Math.max(0, stop - start - room);
      if (end === -1) return;
      flush();
      start = end + 1;
      if (chunk[end] === '\r') {
        if (start === chunk.length) skipLf = true;
        else if (chunk[start] === '\n') start++;
      }
    }
  });
  input.on('end', () => {
    if (buf.length > 0 || dropped > 0) flush();
  });
}
