/**
 * Structured logs on stderr: JSON lines when headless, readable lines on a terminal. Every line is masked
 * with the secrets this process knows (core/masking.ts) before it is written: a worker's lines about a
 * task (its error, a callback's failure) may quote what the task printed.
 */
import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import pino, { type Logger as PinoLogger } from 'pino';
import type pretty from 'pino-pretty';
import { maskJsonLine } from './masking.js';

export type Logger = PinoLogger;

export interface LoggerOptions {
  level?: string;
  /** Force JSON lines even on a terminal (swarm services, log shippers). */
  json?: boolean;
  name?: string;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? process.env.AIRTASKS_LOG_LEVEL ?? 'info';
  const json = opts.json ?? (process.env.AIRTASKS_LOG_FORMAT === 'json' || !process.stderr.isTTY);
  // The JSON line, before it is written or made readable: pretty output is masked too.
  const options = {
    level,
    base: { name: opts.name },
    hooks: { streamWrite: (s: string) => maskJsonLine(s) },
  };
  if (json) return pino(options, jsonDestination());
  // Loaded only for a terminal: daemons write JSON lines and need not hold it in memory.
  const prettyStream = createRequire(import.meta.url)('pino-pretty') as typeof pretty;
  return pino(
    options,
    prettyStream({ destination: 2, sync: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' }),
  );
}

/**
 * Headless lines are written together, 50 ms after the first waits or once 8 KiB wait, not one write each:
 * a worker logs each task's start and end, and each write to a pipe wakes its reader (B2's fan-out lost 8%
 * of its throughput to them). No timer runs while nothing waits (a process at rest stays asleep). What
 * waits is written when the process exits, however it exits but killed (then at most its last 50 ms of
 * lines are lost). A thread's lines (the heartbeat's) are written at once: a thread ended with its process
 * would lose them.
 */
function jsonDestination(): pino.DestinationStream {
  if (!isMainThread) return pino.destination({ fd: 2, sync: true });
  const dest = pino.destination({ fd: 2, sync: true, minLength: 8192 });
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    dest.flush();
  };
  process.once('exit', () => dest.flushSync());
  return {
    write(line: string) {
      dest.write(line);
      timer ??= setTimeout(flush, 50).unref();
    },
  };
}

/** A logger that drops everything: for library calls made without one. */
export const silentLogger: Logger = pino({ level: 'silent' });
