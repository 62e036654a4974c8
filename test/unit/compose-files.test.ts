import { expect } from 'chai';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { toComposeFiles } from '../../src/services/compose-files.js';
import { createLocalSecret, listLocalSecrets, removeLocalSecrets } from '../../src/services/local-secrets.js';
import type { StackFile } from '../../src/services/stack-file.js';

const secretFile = (n: string) => `/proj/.airtasks/secrets/${n}`;

describe('deploy without swarm: the stack rewritten for Docker Compose', () => {
  const stack: StackFile = {
    version: '3.8',
    services: {
      worker: {
        image: 'app:1',
        secrets: ['pg'],
        volumes: ['/var/run/docker.sock:/var/run/docker.sock', './data:/data', 'named:/x'],
        deploy: {
          mode: 'global',
          labels: { 'io.airtasks.queue': 'q' },
          placement: { constraints: ['node.labels.q == true'] },
          resources: { limits: { cpus: '1' } },
        } as StackFile['services'][string]['deploy'],
      },
      proxy: {
        image: 'nginx',
        labels: ['keep=me'],
        configs: [{ source: 'entry', target: '/etc/entry.sh' }, 'plain'],
        deploy: { replicas: 2 },
      },
    },
    configs: { entry: { file: './proxy/entry.sh' }, plain: { file: '/abs/plain' } },
    secrets: { pg: { external: true }, tls: { file: './tls.pem' } },
  };

  it('turns external secrets into local secret files and relative paths into absolute ones', () => {
    const [out] = toComposeFiles([{ file: '/proj/deploy/stack.yml', value: stack }], { secretFile });
    expect(out!.secrets).to.deep.equal({
      pg: { file: '/proj/.airtasks/secrets/pg' },
      tls: { file: '/proj/deploy/tls.pem' },
    });
    expect(out!.services.worker!.volumes).to.deep.equal([
      '/var/run/docker.sock:/var/run/docker.sock',
      '/proj/deploy/data:/data',
      'named:/x',
    ]);
    expect(out).to.not.have.property('configs');
  });

  it('mounts configs as read-only files, keeps queue labels on containers, drops placement and mode', () => {
    const [out] = toComposeFiles([{ file: '/proj/deploy/stack.yml', value: stack }], { secretFile });
    const proxy = out!.services.proxy!;
    expect(proxy.volumes).to.deep.equal([
      '/proj/deploy/proxy/entry.sh:/etc/entry.sh:ro',
      '/abs/plain:/plain:ro',
    ]);
    expect(proxy).to.not.have.property('configs');
    expect(proxy.deploy).to.deep.equal({ replicas: 2 });
    expect(proxy.labels, 'container labels stay when deploy has none').to.deep.equal(['keep=me']);
    const worker = out!.services.worker!;
    expect(worker.labels).to.deep.equal({ 'io.airtasks.queue': 'q' });
    expect(worker.deploy).to.deep.equal({ resources: { limits: { cpus: '1' } } });
    expect(worker.restart).to.equal('unless-stopped');
  });

  it('reads definitions across files: an override renaming a secret, attaching the host network', () => {
    const override: StackFile = {
      services: {
        worker: { networks: ['hostnet'], environment: { A: '1' } },
        proxy: { deploy: { replicas: 0 } },
      },
      networks: { hostnet: { external: true, name: 'host' }, other: { driver: 'bridge' } },
      secrets: { pg: { external: true, name: 'test_pg' } },
    };
    const [base, over] = toComposeFiles(
      [
        { file: '/proj/deploy/stack.yml', value: stack },
        { file: '/elsewhere/override.yml', value: override },
      ],
      { secretFile },
    );
    expect(base!.secrets!.pg).to.deep.equal({ file: '/proj/.airtasks/secrets/test_pg' });
    expect(over!.secrets).to.deep.equal({ pg: { file: '/proj/.airtasks/secrets/test_pg' } });
    expect(over!.services.worker).to.deep.equal({ network_mode: 'host', environment: { A: '1' } });
    expect(over!.networks).to.deep.equal({ other: { driver: 'bridge' } });
    expect(over!.services.proxy).to.deep.equal({ deploy: { replicas: 0 } });
    expect(over!.services.proxy, 'only the first file sets restart').to.not.have.property('restart');
  });
});

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
