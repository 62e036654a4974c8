/**
 * Services' errors carry data and speak no CLI; the command layer names fields by their flags. The
 * CLI's wording must be what it was when services wrote flags into their messages.
 */
import { expect } from 'chai';
import { cliMessage, flagForField } from '../../src/cli/error-messages.js';
import {
  AirtasksError,
  ConflictError,
  ExitCode,
  NotConfiguredError,
  NotFoundError,
  UnavailableError,
  ValidationError,
} from '../../src/core/errors.js';
import { resolveConnection } from '../../src/services/config.js';
import { checkStorableText } from '../../src/services/input-checks.js';
import { parseConf } from '../../src/services/trigger.js';

/** What `fn` throws: an airtasks error, or the test fails. */
const thrown = (fn: () => unknown): AirtasksError => {
  let err: unknown = null;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).to.be.instanceOf(AirtasksError);
  return err as AirtasksError;
};

const TRIGGER_FLAGS = { conf: {}, 'conf-file': {}, 'run-id': {}, 'database-url': {} };
const asTrigger = (err: AirtasksError) => cliMessage(err, (f) => flagForField(f, TRIGGER_FLAGS));

describe('domain errors and their CLI messages', () => {
  it('a validation error names its field, reason and value, and keeps exit code 2', () => {
    const e = new ValidationError('slots', 'out-of-range', 'invalid slot count "-1"', { value: '-1' });
    expect(e).to.be.instanceOf(AirtasksError);
    expect(e).to.include({ field: 'slots', reason: 'out-of-range', value: '-1', exitCode: ExitCode.USAGE });
    expect(e.message).to.equal('invalid slot count "-1"');
    expect(new ValidationError('conf', 'too-large', 'x')).to.not.have.property('value');
  });

  it('not found, conflict and unavailable errors carry what they are about', () => {
    expect(new NotFoundError('run', 'r1', 'unknown run "r1"')).to.include({
      kind: 'run',
      id: 'r1',
      exitCode: ExitCode.NOT_FOUND,
    });
    expect(new ConflictError('pool', 'p', 'busy')).to.include({
      kind: 'pool',
      id: 'p',
      exitCode: ExitCode.CONFLICT,
    });
    expect(new UnavailableError('broker', 'down')).to.include({
      dependency: 'broker',
      exitCode: ExitCode.UNAVAILABLE,
    });
  });

  it('services word a field by its own name; the CLI by its flag, in the same words as before', () => {
    const bad = thrown(() => parseConf('{not json'));
    expect(bad).to.be.instanceOf(ValidationError).and.include({ field: 'conf', reason: 'malformed' });
    expect(bad.message)
      .to.match(/^conf is not valid JSON: /)
      .and.not.include('--');
    expect(asTrigger(bad)).to.match(/^--conf is not valid JSON: /);

    const array = thrown(() => parseConf('[1, 2]'));
    expect(array).to.include({ reason: 'wrong-type' });
    expect(asTrigger(array)).to.equal(
      `--conf must be a JSON object such as '{"name": "value"}', got an array`,
    );

    const nul = thrown(() => parseConf('{"a": "x\\u0000y"}'));
    expect(nul).to.include({ reason: 'unstorable' });
    expect(asTrigger(nul)).to.match(/^--conf: the value at .* NUL character/);

    // A local run's variables are their own field: --variables, not --conf.
    const vars = thrown(() => parseConf('{', 'variables'));
    expect(cliMessage(vars, (f) => flagForField(f, { conf: {}, variables: {} }))).to.match(
      /^--variables is not valid JSON/,
    );
  });

  it('a message that names no field reads the same everywhere', () => {
    const e = thrown(() => checkStorableText('a\u0000b', 'value', 'the value of "k"'));
    expect(e).to.include({ field: 'value', reason: 'unstorable' });
    expect(asTrigger(e))
      .to.equal(e.message)
      .and.match(/^the value of "k" contains a NUL character/);
  });

  it('maps a field to --kebab-case only when the command has that flag', () => {
    expect(flagForField('runId', TRIGGER_FLAGS)).to.equal('--run-id');
    expect(flagForField('databaseUrl', TRIGGER_FLAGS)).to.equal('--database-url');
    expect(flagForField('queues', TRIGGER_FLAGS)).to.equal(undefined);
    // Without a flag the service's wording stays.
    const e = new ValidationError('queues', 'missing', (n) => `${n} needs at least one queue name`);
    expect(asTrigger(e)).to.equal('queues needs at least one queue name');
  });

  it("says how to configure the database in the CLI's words (exit 4)", () => {
    const e = thrown(() => resolveConnection({ cwd: '/' }));
    expect(e).to.be.instanceOf(NotConfiguredError).and.include({
      field: 'databaseUrl',
      exitCode: ExitCode.UNAVAILABLE,
    });
    expect(asTrigger(e)).to.equal(
      'No database configured: pass --database-url, set AIRTASKS_DATABASE_URL, or start `airtasks standalone` in this project.',
    );
  });

  it('leaves other errors as they are', () => {
    expect(asTrigger(new AirtasksError('plain', ExitCode.ERROR))).to.equal('plain');
  });
});
