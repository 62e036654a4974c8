/**
 * Structured logs on stderr: JSON lines when headless, readable lines on a terminal. Every line is masked
 * with the secrets this process knows (core/masking.ts) before it is written: a worker's lines about a
 * task (its error, a callback's failure) may quote what the task printed.
 */
import { createRequire } from 'node:module';
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
  if (json) return pino(options, pino.destination({ fd: 2, sync: true }));
  // Loaded only for a terminal: daemons write JSON lines and need not hold it in memory.
  const prettyStream = createRequire(import.meta.url)('pino-pretty') as typeof pretty;
  return pino(
    options,
    prettyStream({ destination: 2, sync: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' }),
  );
}

/** A logger that drops everything: for library calls made without one. */
export const silentLogger: Logger = pino({ level: 'silent' });
