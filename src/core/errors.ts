/**
 * Errors the user can act on, each with the exit code the CLI uses for it.
 * The table is the contract documented in the README and in --help.
 */
export const ExitCode = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  UNAVAILABLE: 4,
  INVALID_DAGS: 5,
  /** The run or task is not in a state that allows this (cancel an ended run, clear a running task). */
  CONFLICT: 6,
  RUN_FAILED: 10,
  RUN_CANCELLED: 11,
  WAIT_TIMEOUT: 12,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class AirtasksError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = ExitCode.ERROR,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AirtasksError';
  }
}

export const usageError = (msg: string) => new AirtasksError(msg, ExitCode.USAGE);
export const notFound = (msg: string) => new AirtasksError(msg, ExitCode.NOT_FOUND);
export const conflict = (msg: string) => new AirtasksError(msg, ExitCode.CONFLICT);
