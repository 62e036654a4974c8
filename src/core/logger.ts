/** Structured logs on stderr: JSON lines when headless, readable lines on a terminal. */
import pino, { type Logger as PinoLogger } from 'pino';
import pretty from 'pino-pretty';

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
  const base = { name: opts.name };
  if (json) return pino({ level, base }, pino.destination({ fd: 2, sync: true }));
  return pino(
    { level, base },
    pretty({ destination: 2, sync: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' }),
  );
}

/** A logger that drops everything: for library calls made without one. */
export const silentLogger: Logger = pino({ level: 'silent' });
