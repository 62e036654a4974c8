/**
 * Buffers a try's log lines and writes them to Postgres in batches, up to a size cap. Secrets are masked
 * in every line, and the try's result is masked with the same secrets (ResultStore).
 */
import { knownSecrets, maskerOf, type Masker } from '../../core/masking.js';
import type { Db } from '../store/db.js';
import { storableText } from '../../core/storable.js';
import { appendLogs, type LogLine } from '../store/logs.js';

export interface LogSinkOptions {
  capBytes: number;
  flushMs?: number;
  /**
   * Values to mask in every line (the secret variables, read before the try started), besides every
   * secret this process knows (core/masking.ts knownSecrets: values read since included).
   */
  mask?: string[];
}

export class LogSink {
  private buffer: LogLine[] = [];
  private bytes = 0;
  private truncated = false;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  /** The sink's own values, when this process does not know them all (then they are masked as well). */
  private readonly own: Masker | null;

  constructor(
    private readonly db: Db,
    private readonly key: { runId: string; taskId: string; tryNumber: number },
    private readonly opts: LogSinkOptions,
  ) {
    const mask = opts.mask ?? [];
    this.own = knownSecrets().covers(mask) ? null : maskerOf(mask);
  }

  /** The text with the secrets masked, as this sink stores lines: for the try's error and callbacks. */
  mask(text: string): string {
    const known = knownSecrets().mask(text);
    return this.own ? this.own.mask(known) : known;
  }

  /** A JSON value with the secrets masked (strings and keys): for the try's output. */
  maskDeep(value: unknown): unknown {
    const known = knownSecrets().maskDeep(value);
    return this.own ? this.own.maskDeep(known) : known;
  }

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
    let line = this.mask(storableText(raw));
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
