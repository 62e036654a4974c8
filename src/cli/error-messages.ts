/**
 * How the CLI words the errors services throw: a field error names the field by the command's flag
 * (`conf` -> `--conf`), so services can say what is wrong without knowing there is a command line.
 */
import { AirtasksError, FieldError } from '../core/errors.js';

/**
 * The flag that sets a service field: `--kebab-case` of the field when the command has that flag;
 * undefined when none does (the service's name for it stays).
 */
export function flagForField(field: string, flags: Readonly<Record<string, unknown>>): string | undefined {
  const kebab = field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  return Object.hasOwn(flags, kebab) ? `--${kebab}` : undefined;
}

/** The message the CLI shows for an airtasks error. */
export function cliMessage(err: AirtasksError, flagOf: (field: string) => string | undefined): string {
  if (!(err instanceof FieldError)) return err.message;
  const flag = flagOf(err.field);
  return flag ? err.messageFor(flag) : err.message;
}
