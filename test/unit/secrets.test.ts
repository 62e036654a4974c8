import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { AirtasksError } from '../../src/core/errors.js';
import { decryptSecret, encryptSecret, loadSecretKey, requireSecretKey } from '../../src/engine/secrets.js';

const b64 = () => randomBytes(32).toString('base64');

function thrown(fn: () => unknown): AirtasksError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(AirtasksError);
    return e as AirtasksError;
  }
  throw new Error('did not throw');
}

describe('secrets (AES-256-GCM at rest)', () => {
  it('round-trips any text, and every encryption differs (random IV)', () => {
    const key = loadSecretKey({ AIRTASKS_SECRET_KEY: b64() })!;
    for (const plain of ['', 'p@ss', 'ünïcødé 🎉', 'x'.repeat(100_000)]) {
      const a = encryptSecret(plain, 'k', key);
      const b = encryptSecret(plain, 'k', key);
      expect(a).to.not.equal(b);
      if (plain) expect(a).to.not.include(plain);
      expect(decryptSecret(a, 'k', key)).to.equal(plain);
    }
  });

  it('accepts a key as base64 or hex, from the env or a file (a swarm secret)', async () => {
    const raw = randomBytes(32);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-key-'));
    const file = path.join(dir, 'key');
    await writeFile(file, raw.toString('base64') + '\n');
    const fromB64 = loadSecretKey({ AIRTASKS_SECRET_KEY: raw.toString('base64') })!;
    const fromHex = loadSecretKey({ AIRTASKS_SECRET_KEY: raw.toString('hex') })!;
    const fromFile = loadSecretKey({ AIRTASKS_SECRET_KEY_FILE: file })!;
    expect(fromB64.id).to.equal(fromHex.id).and.to.equal(fromFile.id);
    expect(decryptSecret(encryptSecret('v', 'k', fromB64), 'k', fromFile)).to.equal('v');
    expect(loadSecretKey({})).to.equal(null);
  });

  it('refuses unusable keys with a message that says how to make one', () => {
    for (const bad of ['short', 'x'.repeat(64), randomBytes(16).toString('base64')]) {
      const e = thrown(() => loadSecretKey({ AIRTASKS_SECRET_KEY: bad }));
      expect(e.exitCode).to.equal(2);
      expect(e.message).to.include('openssl rand -base64 32');
    }
    expect(thrown(() => loadSecretKey({ AIRTASKS_SECRET_KEY_FILE: '/nonexistent/key' })).message).to.include(
      'cannot read the secret key file',
    );
    expect(
      thrown(() => loadSecretKey({ AIRTASKS_SECRET_KEY: b64(), AIRTASKS_SECRET_KEY_FILE: '/x' })).message,
    ).to.include('only one');
    expect(thrown(() => requireSecretKey('setting secret variable "a"', {})).message).to.include(
      'AIRTASKS_SECRET_KEY',
    );
  });

  it('tells a wrong key from a damaged value, and binds the value to its variable name', () => {
    const key = loadSecretKey({ AIRTASKS_SECRET_KEY: b64() })!;
    const other = loadSecretKey({ AIRTASKS_SECRET_KEY: b64() })!;
    const enc = encryptSecret('secret', 'db_password', key);
    const wrong = thrown(() => decryptSecret(enc, 'db_password', other));
    expect(wrong.exitCode).to.equal(2);
    expect(wrong.message).to.include(`encrypted with key ${key.id}`).and.include(other.id);
    const parts = enc.split('.');
    parts[4] = Buffer.from('tampered').toString('base64url');
    expect(thrown(() => decryptSecret(parts.join('.'), 'db_password', key)).message).to.include('damaged');
    // Moved to another variable: refused.
    expect(thrown(() => decryptSecret(enc, 'other_var', key)).message).to.include('damaged');
    expect(thrown(() => decryptSecret('plain text', 'k', key)).message).to.include('not in a known format');
  });
});
