/** Buffers a try's log lines and writes them to Postgres in batches, up to a size cap. */
import type { Db } from '../store/db.js';
import { storableText } from '../../core/storable.js';
import { appendLogs, type LogLine } from '../store/logs.js';

export interface LogSinkOptions {
  capBytes: number;
  flushMs?: number;
  /** Strings to mask in every line (values of secret variables). */
  mask?: string[];
}

export class LogSink {
  private buffer: LogLine[] = [];
  private bytes = 0;
  private truncated = false;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly key: { runId: string; taskId: string; tryNumber: number },
    private readonly opts: LogSinkOptions,
  ) {}

  stdout(line: string) {
    this.add('stdout', line);
  }
  stderr(line: string) {
    this.add('stderr', line);
  }
  system(line: string) {
    this.add('system', line);
  }

  private add(stream: LogLine['stream'], raw: string) {
    if (this.truncated) return;
    // A NUL byte in a line would make PostgreSQL refuse the whole batch.
    let line = storableText(raw);
    for (const m of this.opts.mask ?? []) if (m) line = line.replaceAll(m, '***');
    this.bytes += Buffer.byteLength(line) + 1;
    if (this.bytes > this.opts.capBytes) {
      this.truncated = true;
      line = `[airtasks] log truncated: this try wrote more than ${this.opts.capBytes} bytes`;
      stream = 'system';
    }
    this.buffer.push({ ...this.key, stream, ts: new Date(), line });
    if (this.buffer.length >= 1000) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.opts.flushMs ?? 200);
  }

  /**
   * Hands over what is buffered, for the caller to store with the try's result (one statement fewer per
   * task), once earlier batches are written: lines stay in order. The sink goes on buffering afterwards.
   */
  async drain(): Promise<LogLine[]> {
    await this.writing;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.buffer;
    this.buffer = [];
    return batch;
  }

  /** Writes what is buffered; resolves when everything added so far is stored. Never throws. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.buffer;
    this.buffer = [];
    this.writing = this.writing.then(async () => {
      if (batch.length === 0) return;
      try {
        await appendLogs(this.db, batch);
      } catch {
        // Logs are best effort: losing a batch must not fail the task or hide its result.
      }
    });
    return this.writing;
  }
}
