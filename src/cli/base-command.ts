/** One base for every command: --json, shared connection flags with env fallbacks, one error mapping. */
import { Command, Errors, Flags, type Interfaces } from '@oclif/core';
import { AirtasksError, ExitCode } from '../core/errors.js';
import { databaseConfigured, type ConnectionOptions } from '../services/config.js';
import { cliMessage, flagForField } from './error-messages.js';

export type CommandFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof BaseCommand)['baseFlags'] & T['flags']
>;
export type CommandArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

export const EXIT_CODES_HELP = `EXIT CODES
  0 ok · 1 error · 2 usage or invalid input · 3 not found · 4 database/broker unreachable
  5 invalid DAG files · 6 state conflict (run already ended, task still running)
  10 run failed · 11 run cancelled · 12 wait timed out`;

/** The command ran inside the project's stack (see `stackRelay`) and ended with this exit code. */
class RanInStack extends Error {
  constructor(readonly exitCode: number) {
    super(`ran in the stack (exit code ${exitCode})`);
  }
}

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true;
  /**
   * The command needs the database: with none configured here (no flag or env, no standalone), it
   * runs inside a container of the project's deployed stack on this Docker engine, when there is one
   * (services/stack-exec.ts), the way a user reaches a stack from the project folder.
   */
  static stackRelay = false;

  static override baseFlags = {
    'database-url': Flags.string({
      env: 'AIRTASKS_DATABASE_URL',
      helpGroup: 'CONNECTION',
      summary: 'Postgres URL (default: the running `airtasks standalone` of this project).',
    }),
    'broker-url': Flags.string({
      env: 'AIRTASKS_BROKER_URL',
      helpGroup: 'CONNECTION',
      summary: 'RabbitMQ URL; without it tasks are queued in Postgres.',
    }),
    schema: Flags.string({
      env: 'AIRTASKS_DB_SCHEMA',
      helpGroup: 'CONNECTION',
      summary: 'Postgres schema of airtasks tables.',
    }),
    'queue-prefix': Flags.string({
      env: 'AIRTASKS_QUEUE_PREFIX',
      helpGroup: 'CONNECTION',
      summary: 'Prefix of RabbitMQ exchange and queue names.',
    }),
    'dags-folder': Flags.string({
      env: 'AIRTASKS_DAGS_FOLDER',
      helpGroup: 'CONNECTION',
      summary: "Folder of DAG files (default: the project's airtasks.json, else ./dags).",
    }),
  };

  protected flags!: CommandFlags<T>;
  protected args!: CommandArgs<T>;

  public override async init(): Promise<void> {
    await super.init();
    const { args, flags } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (this.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    });
    this.flags = flags as CommandFlags<T>;
    this.args = args as CommandArgs<T>;
    if ((this.ctor as typeof BaseCommand).stackRelay && !databaseConfigured(this.connection())) {
      // Loaded only here: it brings the Docker and stack-file modules every other command can do without.
      const { findStackContainer, runInStack } = await import('../services/stack-exec.js');
      const container = await findStackContainer({});
      if (container) {
        this.progress(
          `no database configured here: running this in ${container.name} (stack ${container.stack})`,
        );
        const code = await runInStack({}, container, [...this.id!.split(':'), ...this.argv], {
          stdout: process.stdout,
          stderr: process.stderr,
          ...(process.stdin.isTTY ? {} : { stdin: process.stdin }),
        });
        if (!process.stdin.isTTY) process.stdin.destroy();
        throw new RanInStack(code);
      }
    }
  }

  protected connection(): ConnectionOptions {
    return {
      databaseUrl: this.flags['database-url'],
      brokerUrl: this.flags['broker-url'],
      schema: this.flags.schema,
      queuePrefix: this.flags['queue-prefix'],
      dagsFolder: this.flags['dags-folder'],
    };
  }

  /** Progress and state changes: stderr, and silent under --json so stdout stays one JSON document. */
  protected progress(line: string) {
    if (!this.jsonEnabled()) process.stderr.write(line + '\n');
  }

  /** Ends with an exit code after the result was printed (a run that failed is a result, not an error). */
  protected setExitCode(code: number) {
    process.exitCode = code;
  }

  /** The message of an error as this command says it: service fields named by its flags. */
  protected errorMessage(err: Error): string {
    if (!(err instanceof AirtasksError)) return err.message;
    const ctor = this.ctor as typeof BaseCommand;
    const flags = { ...ctor.baseFlags, ...ctor.flags };
    return cliMessage(err, (field) => flagForField(field, flags));
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    if (err instanceof RanInStack) {
      // What it printed was its result or its error: only the exit code is left to pass on.
      process.exitCode = err.exitCode;
      return;
    }
    const message = this.errorMessage(err);
    // An error the user can act on shows its message only; its cause's stack is for debugging.
    const level = (this.flags as { 'log-level'?: string } | undefined)?.['log-level'];
    if (
      err instanceof AirtasksError &&
      err.cause instanceof Error &&
      (level ?? process.env.AIRTASKS_LOG_LEVEL) === 'debug'
    )
      process.stderr.write(`debug: caused by ${err.cause.stack ?? err.cause.message}\n`);
    if (this.jsonEnabled()) {
      // oclif's JSON error is `{"error": {"oclif": {...}}}` with exit code 1: keep the message and the
      // documented exit code. The message goes to stderr too, for a human watching.
      const exitCode =
        err instanceof AirtasksError
          ? err.exitCode
          : ((err as { oclif?: { exit?: number } }).oclif?.exit ?? ExitCode.ERROR);
      process.exitCode = exitCode;
      this.logJson({ error: { message, exitCode } });
      process.stderr.write(` ›   Error: ${message}\n`);
      return;
    }
    if (err instanceof AirtasksError) {
      return super.catch(new Errors.CLIError(message, { exit: err.exitCode }));
    }
    if (err instanceof Errors.CLIError || (err as { oclif?: unknown }).oclif) return super.catch(err);
    // Unexpected: keep the cause visible.
    return super.catch(new Errors.CLIError(err.stack ?? err.message, { exit: ExitCode.ERROR }));
  }
}
