/** Secrets imported as variables by a deployed scheduler (AIRTASKS_SECRET_VARIABLES), on a real schema. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import pino from 'pino';
import { AirtasksError, ExitCode } from '../../src/core/errors.js';
import { getVariable, listVariables } from '../../src/engine/store/variables.js';
import { readVariable } from '../../src/engine/variables.js';
import { importSecretVariables, secretVariableNames } from '../../src/services/secret-variables.js';
import { freshDb, requireService } from '../helpers/env.js';

const KEY = 'b2'.repeat(32);

describe('secrets imported as variables', function () {
  let db: Awaited<ReturnType<typeof freshDb>>;
  let dir: string;
  let savedKey: string | undefined;

  before(async function () {
    await requireService(this, 'postgres');
    db = await freshDb();
    dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-secrets-'));
    await writeFile(path.join(dir, 'api_token'), 'tok-123\n');
    await writeFile(path.join(dir, 'pem'), '-----BEGIN-----\nabc\n-----END-----\n');
    savedKey = process.env.AIRTASKS_SECRET_KEY;
    process.env.AIRTASKS_SECRET_KEY = KEY;
  });

  after(async () => {
    if (savedKey === undefined) delete process.env.AIRTASKS_SECRET_KEY;
    else process.env.AIRTASKS_SECRET_KEY = savedKey;
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('stores each secret as an encrypted secret variable (one trailing newline dropped), never logging values', async () => {
    let logged = '';
    const logger = pino(
      {},
      new Writable({
        write(chunk, _enc, cb) {
          logged += String(chunk);
          cb();
        },
      }),
    );
    expect(await importSecretVariables(db, ['api_token', 'pem'], { dir, logger })).to.equal(2);
    expect(await readVariable(db, 'api_token')).to.equal('tok-123');
    expect(await readVariable(db, 'pem')).to.equal('-----BEGIN-----\nabc\n-----END-----');
    const row = (await getVariable(db, 'api_token'))!;
    expect(row).to.include({ is_secret: true, encrypted: true, description: 'from the secret api_token' });
    expect(row.value).to.not.contain('tok-123');
    expect(logged).to.contain('secrets imported as variables').and.not.contain('tok-123');

    // A restart with a new value (a rotated secret) replaces it.
    await writeFile(path.join(dir, 'api_token'), 'tok-456');
    await importSecretVariables(db, ['api_token'], { dir });
    expect(await readVariable(db, 'api_token')).to.equal('tok-456');
  });

  it('refuses a missing secret file (exit 4) and writes none of the others', async () => {
    await writeFile(path.join(dir, 'fresh'), 'new value');
    const err = await importSecretVariables(db, ['fresh', 'not_mounted'], { dir }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(AirtasksError);
    expect((err as AirtasksError).exitCode).to.equal(ExitCode.UNAVAILABLE);
    expect((err as Error).message).to.contain('secret "not_mounted"');
    expect((await listVariables(db)).map((v) => v.key)).to.not.include('fresh');
  });

  it('needs the secret key to import anything', async () => {
    delete process.env.AIRTASKS_SECRET_KEY;
    try {
      const err = await importSecretVariables(db, ['api_token'], { dir }).catch((e: unknown) => e);
      expect((err as Error).message).to.contain('needs the secret key');
    } finally {
      process.env.AIRTASKS_SECRET_KEY = KEY;
    }
  });

  it('reads the names from AIRTASKS_SECRET_VARIABLES and refuses invalid ones (exit 2)', () => {
    expect(secretVariableNames({})).to.deep.equal([]);
    expect(secretVariableNames({ AIRTASKS_SECRET_VARIABLES: ' a, b,,a ' })).to.deep.equal(['a', 'b']);
    const err = (() => {
      try {
        secretVariableNames({ AIRTASKS_SECRET_VARIABLES: 'ok,../etc/passwd' });
      } catch (e) {
        return e;
      }
    })();
    expect((err as AirtasksError).exitCode).to.equal(ExitCode.USAGE);
  });
});
