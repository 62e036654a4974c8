import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { applySecretFiles } from '../../src/services/config.js';

describe('connection secrets from files (*_FILE)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-secrets-'));
    await writeFile(path.join(dir, 'pg'), 'p@ss:w/rd\n');
    await writeFile(path.join(dir, 'url'), 'amqp://u:v@rabbit:5672\n');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('puts a password file into the URL, encoded', () => {
    const o = applySecretFiles(
      { databaseUrl: 'postgres://airtasks@db:5432/airtasks' },
      { AIRTASKS_DATABASE_PASSWORD_FILE: path.join(dir, 'pg') },
    );
    const u = new URL(o.databaseUrl!);
    expect(u.username).to.equal('airtasks');
    expect(decodeURIComponent(u.password)).to.equal('p@ss:w/rd');
    expect(u.host).to.equal('db:5432');
  });

  it('reads a whole URL from a file when no URL is given', () => {
    const o = applySecretFiles({}, { AIRTASKS_BROKER_URL_FILE: path.join(dir, 'url') });
    expect(o.brokerUrl).to.equal('amqp://u:v@rabbit:5672');
    expect(o.databaseUrl).to.equal(undefined);
  });

  it('names the variable, not the content, when the file is missing', () => {
    expect(() =>
      applySecretFiles(
        { databaseUrl: 'postgres://a@b/c' },
        { AIRTASKS_DATABASE_PASSWORD_FILE: path.join(dir, 'missing') },
      ),
    ).to.throw(/AIRTASKS_DATABASE_PASSWORD_FILE names .*missing.*ENOENT/);
  });
});
