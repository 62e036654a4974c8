import { expect } from 'chai';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLocalSecret, listLocalSecrets, removeLocalSecrets } from '../../src/services/local-secrets.js';

describe('local secrets (files under .airtasks/secrets)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-local-secrets-'));
    await writeFile(path.join(dir, 'airtasks.json'), '{}');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('writes 0600 files in a 0700 folder git ignores, refuses a second create, lists and removes', async () => {
    const r = await createLocalSecret({ cwd: dir, name: 'pg', value: Buffer.from('s3cret') });
    expect(r).to.include({ name: 'pg', bytes: 6, blank: false });
    expect(await readFile(r.file, 'utf8')).to.equal('s3cret');
    expect((await stat(r.file)).mode & 0o777).to.equal(0o600);
    expect((await stat(path.dirname(r.file))).mode & 0o777).to.equal(0o700);
    expect(await readFile(path.join(path.dirname(r.file), '.gitignore'), 'utf8')).to.equal('*\n');
    const blank = await createLocalSecret({ cwd: dir, name: 'tls', value: Buffer.alloc(0) });
    expect(blank).to.include({ blank: true, bytes: 1 });
    try {
      await createLocalSecret({ cwd: dir, name: 'pg', value: Buffer.from('x') });
      expect.fail('a second create must be refused');
    } catch (err) {
      expect((err as { exitCode: number }).exitCode).to.equal(2);
    }
    expect((await listLocalSecrets({ cwd: dir })).map((s) => s.name)).to.deep.equal(['pg', 'tls']);
    await removeLocalSecrets({ cwd: dir, names: ['pg'] });
    expect((await listLocalSecrets({ cwd: dir })).map((s) => s.name)).to.deep.equal(['tls']);
    try {
      await removeLocalSecrets({ cwd: dir, names: ['pg'] });
      expect.fail('removing a missing secret must fail');
    } catch (err) {
      expect((err as { exitCode: number }).exitCode).to.equal(3);
    }
  });

  it('refuses names Docker would refuse', async () => {
    for (const name of ['../x', '', '.hidden', 'a b'])
      try {
        await createLocalSecret({ cwd: dir, name, value: Buffer.from('x') });
        expect.fail(`"${name}" must be refused`);
      } catch (err) {
        expect((err as { exitCode: number }).exitCode, name).to.equal(2);
      }
  });
});
