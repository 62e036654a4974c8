/** Masking of secret values (core/masking.ts): forms of a secret, overlaps, JSON values, the process's set. */
import { Writable } from 'node:stream';
import { expect } from 'chai';
import pino from 'pino';
import {
  knownSecrets,
  Masker,
  maskerOf,
  maskJsonLine,
  MIN_MASKED_LENGTH,
  NO_SECRETS,
  secretForms,
  setKnownSecrets,
} from '../../src/core/masking.js';
import { seededRandom } from '../helpers/faults.js';

describe('masking secrets', () => {
  it('replaces every occurrence of each secret with ***', () => {
    const m = new Masker(['hunter22', 'tok-123']);
    expect(m.mask('pw=hunter22 tok=tok-123; again hunter22')).to.equal('pw=*** tok=***; again ***');
    expect(m.mask('nothing here')).to.equal('nothing here');
    expect(m.mask('')).to.equal('');
  });

  it('masks the longest secret first, and overlapping or adjacent secrets as one', () => {
    // One secret inside another: the longer one wins, nothing of it is left.
    expect(new Masker(['abcd', 'xxabcdyy']).mask('[xxabcdyy] [abcd]')).to.equal('[***] [***]');
    // Two secrets that overlap: neither leaves a piece in view.
    expect(new Masker(['abcdef', 'defghi']).mask('<abcdefghi>')).to.equal('<***>');
    expect(new Masker(['defghi', 'abcdef']).mask('<abcdefghi>')).to.equal('<***>');
    // A secret overlapping itself, and secrets back to back.
    expect(new Masker(['abab']).mask('ababab!')).to.equal('***!');
    expect(new Masker(['1111', '2222']).mask('11112222 1111')).to.equal('*** ***');
    // A later, longer occurrence reaching back over several earlier ones.
    expect(new Masker(['bcde', 'cdef', 'abcdefgh']).mask('-abcdefgh-')).to.equal('-***-');
  });

  it('agrees with a naive masking on 500 random texts and secrets (overlaps forced by a small alphabet)', () => {
    const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const rnd = seededRandom(seed);
    const word = (min: number, max: number) =>
      Array.from(
        { length: min + Math.floor(rnd() * (max - min + 1)) },
        () => 'abc'[Math.floor(rnd() * 3)],
      ).join('');
    for (let i = 0; i < 500; i++) {
      const secrets = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => word(2, 7));
      const text = word(0, 40);
      // Naive: mark every character of every occurrence, then one *** per run of marked characters.
      const marked = new Array<boolean>(text.length).fill(false);
      for (const s of secrets.filter((x) => x.length >= MIN_MASKED_LENGTH))
        for (let at = text.indexOf(s); at !== -1; at = text.indexOf(s, at + 1))
          for (let k = at; k < at + s.length; k++) marked[k] = true;
      const expected = text.replace(/./g, (c, k: number) => (marked[k] ? '\0' : c)).replace(/\0+/g, '***');
      expect(new Masker(secrets).mask(text), `seed ${seed} case ${i}: ${secrets} in ${text}`).to.equal(
        expected,
      );
    }
  });

  it('masks a multi-line secret whole and each of its lines, whatever the line ends', () => {
    const secret = '-----BEGIN KEY-----\nline-one-AAAA\nline-two-BBBB\n-----END KEY-----\n';
    const m = new Masker([secret]);
    // Its lines are masked as one where only line ends separate them (the last newline is not masked).
    expect(m.mask(`key: ${secret}done`)).to.equal('key: ***\ndone');
    expect(m.mask(secret.replaceAll('\n', '\r\n'))).to.equal('***\r\n');
    // Printed line by line (a log), or one line alone somewhere else.
    expect(secret.split('\n').map((l) => m.mask(l))).to.deep.equal(['***', '***', '***', '***', '']);
    expect(m.mask('  line-two-BBBB\r')).to.equal('  ***\r');
    // Inside a JSON text (escaped newlines).
    expect(m.mask(JSON.stringify({ k: secret }))).to.equal('{"k":"***\\n"}');
    // Lines of the secret apart from each other are masked apart.
    expect(m.mask('line-one-AAAA, then line-two-BBBB')).to.equal('***, then ***');
    // Lines shorter than the minimum are not masked alone, but the whole value is.
    const short = new Masker(['ab\ncd\nef']);
    expect(short.mask('ab\ncd\nef')).to.equal('***');
    expect(short.mask('ab')).to.equal('ab');
  });

  it('masks the trimmed value and the value as JSON writes it in a string', () => {
    const m = new Masker(['  padded-secret\n', 'quote"and\\slash']);
    expect(m.mask('x padded-secret y')).to.equal('x *** y');
    expect(m.mask(JSON.stringify('quote"and\\slash'))).to.equal('"***"');
    expect(secretForms('quote"and\\slash')).to.include('quote\\"and\\\\slash');
  });

  it(`leaves values shorter than ${MIN_MASKED_LENGTH} characters unmasked`, () => {
    expect(MIN_MASKED_LENGTH).to.equal(4);
    expect(secretForms('abc')).to.deep.equal([]);
    expect(secretForms('  abc  ')).to.deep.equal(['  abc  ']);
    const m = new Masker(['abc', '', 'x']);
    expect(m.isEmpty).to.equal(true);
    expect(m.mask('abc x')).to.equal('abc x');
    expect(new Masker(['abcd']).mask('abcd abc')).to.equal('*** abc');
  });

  it('masks JSON values deeply: strings, keys, numbers, nested arrays; the rest stays', () => {
    const m = new Masker(['s3cret-1', '12345678']);
    const value = {
      plain: 'ok',
      secret: 'the s3cret-1 here',
      's3cret-1': 'as a key',
      nested: [{ deeper: ['s3cret-1', 1, true, null] }],
      pin: 12345678,
      when: new Date('2024-01-02T03:04:05.000Z'),
    };
    expect(m.maskDeep(value)).to.deep.equal({
      plain: 'ok',
      secret: 'the *** here',
      '***': 'as a key',
      nested: [{ deeper: ['***', 1, true, null] }],
      pin: '***',
      when: '2024-01-02T03:04:05.000Z',
    });
    expect(m.maskDeep('s3cret-1')).to.equal('***');
    expect(m.maskDeep(null)).to.equal(null);
    expect(m.maskDeep(undefined)).to.equal(undefined);
    // Nothing to mask: the very same value comes back.
    expect(NO_SECRETS.maskDeep(value)).to.equal(value);
  });

  it('builds a masker once per list, and tells whether it covers other values', () => {
    const list = ['aaaa-1', 'bbbb-2'];
    expect(maskerOf(list)).to.equal(maskerOf(list));
    expect(maskerOf([])).to.equal(NO_SECRETS);
    expect(maskerOf(list).covers(['bbbb-2'])).to.equal(true);
    expect(maskerOf(list).covers(['cccc-3'])).to.equal(false);
    expect(new Masker(['aaaa-1']).test('x aaaa-1')).to.equal(true);
    expect(new Masker(['aaaa-1']).test('x aaaa')).to.equal(false);
  });

  it("keeps the process's secrets by source, each replacing its own", () => {
    const a = {};
    const b = {};
    setKnownSecrets(a, ['known-one-1']);
    setKnownSecrets(b, ['known-two-2']);
    expect(knownSecrets().mask('known-one-1 known-two-2')).to.equal('*** ***');
    setKnownSecrets(a, ['known-three-3']);
    expect(knownSecrets().mask('known-one-1 known-three-3')).to.equal('known-one-1 ***');
    setKnownSecrets(a, []);
    setKnownSecrets(b, []);
    expect(knownSecrets().mask('known-two-2')).to.equal('known-two-2');
  });

  it('masks JSON log lines in their values and keys, keeping them JSON', () => {
    const m = new Masker(['multi-AAAA\nmulti-BBBB', 'quo"te-secret']);
    const line =
      JSON.stringify({ level: 30, msg: 'task finished', error: 'x multi-AAAA\nmulti-BBBB y' }) + '\n';
    const out = maskJsonLine(line, m);
    expect(out.endsWith('\n')).to.equal(true);
    expect(JSON.parse(out)).to.deep.equal({ level: 30, msg: 'task finished', error: 'x *** y' });
    const keyed = maskJsonLine(JSON.stringify({ 'quo"te-secret': 1 }), m);
    expect(JSON.parse(keyed)).to.deep.equal({ '***': 1 });
    const clean = JSON.stringify({ msg: 'nothing' }) + '\n';
    expect(maskJsonLine(clean, m)).to.equal(clean);
    expect(maskJsonLine('not json multi-AAAA', m)).to.equal('not json ***');
  });

  it("masks a pino logger's lines through the same hook createLogger uses", () => {
    const source = {};
    setKnownSecrets(source, ['pino-secret-9']);
    try {
      let written = '';
      const log = pino(
        { hooks: { streamWrite: (s: string) => maskJsonLine(s) } },
        new Writable({
          write(chunk, _enc, cb) {
            written += String(chunk);
            cb();
          },
        }),
      );
      log
        .child({ runId: 'r' })
        .warn({ err: 'failed: pino-secret-9', nested: { v: ['pino-secret-9'] } }, 'x pino-secret-9');
      expect(written).to.not.include('pino-secret-9');
      expect(JSON.parse(written)).to.include({ err: 'failed: ***', msg: 'x ***', runId: 'r' });
    } finally {
      setKnownSecrets(source, []);
    }
  });
});
