/**
 * Errors the user can act on, each with the exit code the CLI uses for it.
 * The table is the contract documented in the README and in --help.
 *
 * Services throw the domain errors below: they carry what went wrong as data (which field and why,
 * which kind of thing was not found) and a message in the service's own words. A front end turns
 * them into its own: the CLI names a field by its flag (`messageFor`), a web page marks the field.
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

/** Words a message around the name of a field, so each front end can put its own name in. */
export type Wording = (fieldName: string) => string;

/** A message that does not name its field (it names the value, or what to do), or one that does. */
export type FieldMessage = string | Wording;

/** An error about one field of a call (an option or a setting), named as the service calls it. */
export abstract class FieldError extends AirtasksError {
  private readonly wording: Wording;

  constructor(
    /** The option's name in the service call, e.g. `conf` or `databaseUrl`. */
    readonly field: string,
    message: FieldMessage,
    exitCode: ExitCode,
    options?: { cause?: unknown },
  ) {
    const wording = typeof message === 'string' ? () => message : message;
    super(wording(field), exitCode, options);
    this.wording = wording;
  }

  /** The message with the field called `name` (the CLI passes its flag, e.g. `--conf`). */
  messageFor(name: string): string {
    return this.wording(name);
  }
}

/** What is wrong with a value, for a front end that shows it its own way. */
export type InvalidReason =
  /** Required and not given, or empty. */
  | 'missing'
  /** Cannot be parsed, or is not of the allowed form (a name with characters it may not have). */
  | 'malformed'
  /** Parsed, but the wrong kind of value (an array where an object goes). */
  | 'wrong-type'
  /** A number outside its bounds. */
  | 'out-of-range'
  /** Over a size limit. */
  | 'too-large'
  /** Holds what the database cannot store (a NUL character, a lone surrogate, deep nesting). */
  | 'unstorable'
  /** Does not match the schema it is checked against (a DAG's params). */
  | 'schema'
  /** Names something that exists already, or a place already in use. */
  | 'taken'
  /** A name kept for airtasks' own use. */
  | 'reserved'
  /** The file it names cannot be read. */
  | 'unreadable';

/** A value the caller gave that cannot be used (exit 2): nothing was written. */
export class ValidationError extends FieldError {
  readonly reason: InvalidReason;
  /** The value refused, where it is small enough to show; large ones (a conf, a variable) are left out. */
  declare readonly value?: unknown;

  constructor(
    field: string,
    reason: InvalidReason,
    message: FieldMessage,
    options: { value?: unknown; cause?: unknown } = {},
  ) {
    super(field, message, ExitCode.USAGE, { cause: options.cause });
    this.name = 'ValidationError';
    this.reason = reason;
    if ('value' in options) this.value = options.value;
  }
}

/** A setting the call needs was given nowhere (exit 4, like a service that cannot be reached). */
export class NotConfiguredError extends FieldError {
  constructor(field: string, message: FieldMessage) {
    super(field, message, ExitCode.UNAVAILABLE);
    this.name = 'NotConfiguredError';
  }
}

/** The kinds of things a call may name. */
export type EntityKind =
  'dag' | 'run' | 'task' | 'variable' | 'pool' | 'secret' | 'stack' | 'file' | 'folder' | 'backfill';

/** The call names something that does not exist (exit 3). */
export class NotFoundError extends AirtasksError {
  constructor(
    readonly kind: EntityKind,
    readonly id: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, ExitCode.NOT_FOUND, options);
    this.name = 'NotFoundError';
  }
}

/** The thing is not in a state that allows the call: a run that ended, a task still running (exit 6). */
export class ConflictError extends AirtasksError {
  constructor(
    readonly kind: EntityKind,
    readonly id: string,
    message: string,
  ) {
    super(message, ExitCode.CONFLICT);
    this.name = 'ConflictError';
  }
}

/** What a call depends on and could not reach or use. */
export type Dependency = 'database' | 'broker' | 'docker' | 'swarm' | 'compose' | 'secret';

/** Why a service could not be used, where it is known (a front end may offer its own hint). */
export type UnavailableReason =
  /** Nothing answers at its address: refused, unknown host, no route. */
  | 'unreachable'
  /** Something accepted the connection and did not answer in time. */
  | 'timeout'
  /** It refused the user or password. */
  | 'credentials'
  /** It has no such database or virtual host, or the user may not use it. */
  | 'not-found'
  /** What answers speaks another protocol (the URL points at another service). */
  | 'protocol'
  /** The TLS handshake failed. */
  | 'tls'
  /** It is there but takes no connections now (starting up, too many connections). */
  | 'busy';

/** A service the call depends on cannot be reached, or is not there (exit 4). */
export class UnavailableError extends AirtasksError {
  readonly reason?: UnavailableReason;

  constructor(
    readonly dependency: Dependency,
    message: string,
    options?: { cause?: unknown; reason?: UnavailableReason },
  ) {
    super(message, ExitCode.UNAVAILABLE, options);
    this.name = 'UnavailableError';
    if (options?.reason) this.reason = options.reason;
  }
}

/** Plain errors by exit code, for checks with nothing more to say (the engine's, the CLI's own). */
export const usageError = (msg: string) => new AirtasksError(msg, ExitCode.USAGE);
export const notFound = (msg: string) => new AirtasksError(msg, ExitCode.NOT_FOUND);
export const conflict = (msg: string) => new AirtasksError(msg, ExitCode.CONFLICT);
