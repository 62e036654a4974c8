import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type Docker from 'dockerode';
import { parseAuthValue, registryOf, resolveRegistryAuth } from '../../src/docker/auth.js';
import { findTaskContainers } from '../../src/docker/containers.js';
import { connectionOptions } from '../../src/docker/engine.js';
import { ensureImage, imageExists, normalizeImage, splitReference } from '../../src/docker/images.js';
import { nanoCpus, parseBytes } from '../../src/docker/units.js';
import { dockerOperator } from '../../src/engine/operators/docker.js';
import {
  BASE_IMAGE,
  dockerContext,
  ensureBaseImage,
  removeRunContainers,
  requireDocker,
  startFakeRegistry,
  type FakeRegistry,
  type TestContext,
} from '../helpers/docker.js';
import { fails } from '../helpers/operators.js';

describe('docker references, units and engine addresses', function () {
  it('adds :latest to untagged references only', function () {
    expect(normalizeImage('busybox')).to.equal('busybox:latest');
    expect(normalizeImage('library/busybox:1.36')).to.equal('library/busybox:1.36');
    expect(normalizeImage('localhost:5000/team/app')).to.equal('localhost:5000/team/app:latest');
    expect(normalizeImage('localhost:5000/team/app:v2')).to.equal('localhost:5000/team/app:v2');
    const digest = `app@sha256:${'a'.repeat(64)}`;
    expect(normalizeImage(digest)).to.equal(digest);
    expect(() => normalizeImage('  ')).to.throw(/empty/);
    expect(splitReference('localhost:5000/team/app:v2')).to.deep.equal({
      repository: 'localhost:5000/team/app',
      tag: 'v2',
    });
    expect(splitReference(digest)).to.deep.equal({ repository: digest, tag: undefined });
  });

  it('finds the registry of a reference', function () {
    expect(registryOf('ubuntu:22.04')).to.equal('docker.io');
    expect(registryOf('nvidia/cuda:12.4.1-base-ubuntu22.04')).to.equal('docker.io');
    expect(registryOf('docker.io/library/ubuntu')).to.equal('docker.io');
    expect(registryOf('ghcr.io/org/app:1')).to.equal('ghcr.io');
    expect(registryOf('localhost/app')).to.equal('localhost');
    expect(registryOf('127.0.0.1:5000/app')).to.equal('127.0.0.1:5000');
  });

  it('parses sizes and CPU counts as the docker CLI does', function () {
    expect(parseBytes('512m')).to.equal(512 * 1024 ** 2);
    expect(parseBytes('1.5g')).to.equal(1.5 * 1024 ** 3);
    expect(parseBytes('8G')).to.equal(8 * 1024 ** 3);
    expect(parseBytes('64MiB')).to.equal(64 * 1024 ** 2);
    expect(parseBytes(1000)).to.equal(1000);
    expect(() => parseBytes('lots', 'memory')).to.throw(/memory "lots" is not a size/);
    expect(nanoCpus(0.5)).to.equal(500_000_000);
    expect(() => nanoCpus(0)).to.throw(/positive/);
  });

  it('reads engine addresses in DOCKER_HOST form', function () {
    expect(connectionOptions({})).to.equal(undefined);
    expect(connectionOptions({ host: 'unix:///run/docker.sock' })).to.deep.equal({
      socketPath: '/run/docker.sock',
    });
    expect(connectionOptions({ host: '/var/run/docker.sock' })).to.deep.equal({
      socketPath: '/var/run/docker.sock',
    });
    expect(connectionOptions({ host: 'tcp://127.0.0.1:2375' })).to.deep.equal({
      host: '127.0.0.1',
      port: 2375,
      protocol: 'http',
    });
    expect(connectionOptions({ host: 'tcp://127.0.0.1:2376' })).to.include({ protocol: 'https', port: 2376 });
    expect(connectionOptions({ socketPath: '/x.sock', host: 'tcp://h:1' })).to.deep.equal({
      socketPath: '/x.sock',
    });
    expect(() => connectionOptions({ host: 'ftp://x' })).to.throw(/unsupported Docker host/);
  });

  it('says what to do when the engine cannot be reached', async function () {
    const t = dockerContext({ image: 'anything', dockerHost: 'unix:///nonexistent/docker.sock' });
    const err = await fails(dockerOperator.execute(t.ctx));
    expect(err.message).to.equal(
      'cannot reach the Docker engine at unix:///nonexistent/docker.sock (ENOENT): start dockerd there, ' +
        "or point DOCKER_HOST (or the task's dockerHost) at a running engine",
    );
  });
});

describe('registry credentials', function () {
  let dir: string;
  let previousPath: string | undefined;
  before(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-auth-test-'));
    previousPath = process.env.PATH;
    // A credential helper that echoes the server it was asked for, so the test sees what it was given.
    const helper = path.join(dir, 'docker-credential-airtasks-test');
    await writeFile(
      helper,
      '#!/bin/sh\n[ "$1" = get ] || exit 1\nread -r server\n' +
        'case "$server" in *unknown*) echo "credentials not found in native keychain"; exit 1;; esac\n' +
        'if [ "$server" = "https://index.docker.io/v1/" ]; then u="<token>"; else u=helper-user; fi\n' +
        'printf \'{"ServerURL":"%s","Username":"%s","Secret":"secret-for-%s"}\' "$server" "$u" "$server"\n',
    );
    await chmod(helper, 0o755);
    process.env.PATH = `${dir}:${previousPath}`;
  });
  after(async function () {
    process.env.PATH = previousPath;
    await rm(dir, { recursive: true, force: true });
  });
  const config = async (c: unknown) => {
    await writeFile(path.join(dir, 'config.json'), JSON.stringify(c));
    return { configDir: dir };
  };

  it('reads auths entries (base64 auth, username/password, identity token) by registry', async function () {
    const o = await config({
      auths: {
        'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hub:pass').toString('base64') },
        'ghcr.io': { username: 'gh', password: 'ghp' },
        'https://reg.example:5000/v2/': { identitytoken: 'tok' },
      },
    });
    expect(await resolveRegistryAuth('ubuntu', o)).to.deep.equal({
      username: 'hubuser',
      password: 'hub:pass',
      serveraddress: 'https://index.docker.io/v1/',
    });
    expect(await resolveRegistryAuth('ghcr.io/org/app:1', o)).to.deep.equal({
      username: 'gh',
      password: 'ghp',
      serveraddress: 'ghcr.io',
    });
    expect(await resolveRegistryAuth('reg.example:5000/app', o)).to.deep.equal({
      identitytoken: 'tok',
      serveraddress: 'reg.example:5000',
    });
    expect(await resolveRegistryAuth('quay.io/app', o)).to.equal(undefined);
  });

  it('asks credential helpers (credHelpers first, then credsStore) with the server URL on stdin', async function () {
    const o = await config({
      auths: { 'ghcr.io': { username: 'from-auths', password: 'x' } },
      credHelpers: { 'reg.example:5000': 'airtasks-test' },
      credsStore: 'airtasks-test',
    });
    expect(await resolveRegistryAuth('reg.example:5000/app', o)).to.deep.equal({
      username: 'helper-user',
      password: 'secret-for-reg.example:5000',
      serveraddress: 'reg.example:5000',
    });
    expect((await resolveRegistryAuth('ghcr.io/app', o))?.username, 'auths before credsStore').to.equal(
      'from-auths',
    );
    expect(await resolveRegistryAuth('ubuntu', o), '<token> is an identity token').to.deep.equal({
      identitytoken: 'secret-for-https://index.docker.io/v1/',
      serveraddress: 'https://index.docker.io/v1/',
    });
    expect(await resolveRegistryAuth('unknown.example/app', o)).to.equal(undefined);
  });

  it('warns and goes on without credentials when a helper is missing', async function () {
    const warnings: string[] = [];
    const o = await config({ credsStore: 'airtasks-missing-helper' });
    expect(await resolveRegistryAuth('ubuntu', { ...o, onWarning: (m) => warnings.push(m) })).to.equal(
      undefined,
    );
    expect(warnings.join('\n')).to.match(/docker-credential-airtasks-missing-helper could not be run/);
  });

  it('has no credentials without a config file', async function () {
    expect(await resolveRegistryAuth('ubuntu', { configDir: path.join(dir, 'nope') })).to.equal(undefined);
  });

  it('parses credentials held in a variable', function () {
    const img = 'reg.example:5000/app';
    expect(parseAuthValue('u:p:q', img)).to.deep.equal({
      username: 'u',
      password: 'p:q',
      serveraddress: 'reg.example:5000',
    });
    expect(parseAuthValue('{"username":"u","password":"p"}', img)).to.include({
      username: 'u',
      password: 'p',
    });
    expect(parseAuthValue('{"Username":"u","Secret":"p"}', img)).to.include({ username: 'u', password: 'p' });
    expect(parseAuthValue('{"identitytoken":"t"}', img)).to.include({ identitytoken: 't' });
    expect(
      parseAuthValue(JSON.stringify({ auths: { 'reg.example:5000': { auth: 'dTpw' } } }), img),
    ).to.include({
      username: 'u',
      password: 'p',
    });
    expect(() => parseAuthValue('{"auths":{}}', img)).to.throw(/no credentials for reg.example:5000/);
    expect(() => parseAuthValue('{bad', img)).to.throw(/invalid JSON/);
    expect(() => parseAuthValue('justatoken', img)).to.throw(/user:password/);
  });
});

describe('docker images: pull policy and pulls (real engine, fake registry on loopback)', function () {
  this.timeout(120_000);
  let d: Docker;
  let open: FakeRegistry;
  let locked: FakeRegistry;
  let configDir: string;
  let previousConfig: string | undefined;
  const runs: string[] = [];
  const images: string[] = [];
  const context = (args: Record<string, unknown>, variables?: Record<string, string>): TestContext => {
    const t = dockerContext({ networkMode: 'host', ...args }, { variables });
    runs.push(t.runId);
    return t;
  };
  const dropImage = async (ref: string) => {
    await d
      .getImage(ref)
      .remove({ force: true })
      .catch(() => undefined);
  };

  before(async function () {
    d = await requireDocker(this);
    await ensureBaseImage(d);
    open = await startFakeRegistry({ name: 'airtasks/tiny', tag: 'latest' });
    locked = await startFakeRegistry({
      name: 'airtasks/private',
      tag: '1.0',
      username: 'robot',
      password: 's3cret-pw',
    });
    images.push(`${open.host}/airtasks/tiny:latest`, `${locked.host}/airtasks/private:1.0`);
    configDir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-docker-config-'));
    previousConfig = process.env.DOCKER_CONFIG;
    process.env.DOCKER_CONFIG = configDir;
  });

  after(async function () {
    if (previousConfig === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = previousConfig;
    if (!d) return;
    await removeRunContainers(d, runs);
    for (const i of images) await dropImage(i);
    await open?.close();
    await locked?.close();
    await rm(configDir, { recursive: true, force: true });
  });

  beforeEach(async function () {
    for (const i of images) await dropImage(i);
    await rm(path.join(configDir, 'config.json'), { force: true });
  });

  it('with pull policy never, fails clearly when the image is missing and creates nothing', async function () {
    const t = context({ image: 'airtasks-test/missing-image', pullPolicy: 'never', command: 'true' });
    const err = await fails(dockerOperator.execute(t.ctx));
    expect(err.message).to.equal(
      'image airtasks-test/missing-image:latest is not on the Docker engine and the pull policy is "never": ' +
        'build or load it there first (docker build / docker load / docker import), or use pullPolicy "missing"',
    );
    expect(await findTaskContainers(d, { runId: t.runId })).to.have.length(0);
  });

  it('uses a local image without pulling under policies missing and never', async function () {
    for (const pullPolicy of ['missing', 'never']) {
      const t = context({ image: BASE_IMAGE, pullPolicy, command: 'echo local' });
      expect((await dockerOperator.execute(t.ctx)).output).to.equal('local');
      expect(t.sink.of('system').filter((l) => l.startsWith('pull'))).to.deep.equal([]);
    }
  });

  it('pulls a missing untagged image as :latest, with progress in the task log', async function () {
    const t = context({ image: `${open.host}/airtasks/tiny`, command: ['echo', 'pulled and ran'] });
    expect((await dockerOperator.execute(t.ctx)).output).to.equal('pulled and ran');
    const system = t.sink.of('system');
    expect(system).to.include(`pulling ${open.host}/airtasks/tiny:latest`);
    expect(system).to.include(`pulled ${open.host}/airtasks/tiny:latest`);
    expect(system.some((l) => /^pull: .*Pull complete/.test(l))).to.equal(true);
    expect(system.some((l) => /^pull: Status: Downloaded newer image/.test(l))).to.equal(true);
    expect(
      open.requests.some((r) => r.endsWith('/v2/airtasks/tiny/manifests/latest')),
      open.requests.join(', '),
    ).to.equal(true);
  });

  it('pulls again with policy always', async function () {
    const ref = `${open.host}/airtasks/tiny:latest`;
    await ensureImage(d, ref, { policy: 'missing' });
    const before = open.requests.filter((r) => r.includes('/manifests/')).length;
    const t = context({ image: ref, pullPolicy: 'always', command: 'echo again' });
    expect((await dockerOperator.execute(t.ctx)).output).to.equal('again');
    expect(open.requests.filter((r) => r.includes('/manifests/')).length).to.be.greaterThan(before);
    expect(t.sink.of('system')).to.include(`pulling ${ref}`);
  });

  it('fails with the engine message when a private registry refuses the pull, creating nothing', async function () {
    const t = context({ image: `${locked.host}/airtasks/private:1.0`, command: 'true' });
    const err = await fails(dockerOperator.execute(t.ctx));
    expect(err.message).to.match(new RegExp(`^pulling ${locked.host}/airtasks/private:1.0 failed: .+`));
    expect(err.message).to.match(/auth|unauthorized|denied/i);
    expect(await findTaskContainers(d, { runId: t.runId })).to.have.length(0);
  });

  it('authenticates from the Docker config auths', async function () {
    await writeFile(
      path.join(configDir, 'config.json'),
      JSON.stringify({
        auths: { [locked.host]: { auth: Buffer.from('robot:s3cret-pw').toString('base64') } },
      }),
    );
    const t = context({ image: `${locked.host}/airtasks/private:1.0`, command: 'echo private ok' });
    expect((await dockerOperator.execute(t.ctx)).output).to.equal('private ok');
    expect(t.sink.text()).to.not.contain('s3cret-pw');
  });

  it('authenticates through a credential helper', async function () {
    const bin = await mkdtemp(path.join(os.tmpdir(), 'airtasks-cred-helper-'));
    const previousPath = process.env.PATH;
    try {
      const helper = path.join(bin, 'docker-credential-airtasks-reg');
      await writeFile(
        helper,
        `#!/bin/sh\nread -r server\n[ "$server" = "${locked.host}" ] || exit 1\n` +
          `printf '{"ServerURL":"%s","Username":"robot","Secret":"s3cret-pw"}' "$server"\n`,
      );
      await chmod(helper, 0o755);
      process.env.PATH = `${bin}:${previousPath}`;
      await writeFile(
        path.join(configDir, 'config.json'),
        JSON.stringify({ credHelpers: { [locked.host]: 'airtasks-reg' } }),
      );
      const t = context({ image: `${locked.host}/airtasks/private:1.0`, command: 'echo helper ok' });
      expect((await dockerOperator.execute(t.ctx)).output).to.equal('helper ok');
    } finally {
      process.env.PATH = previousPath;
      await rm(bin, { recursive: true, force: true });
    }
  });

  it('authenticates from a variable holding the credentials, which wins over the Docker config', async function () {
    await writeFile(
      path.join(configDir, 'config.json'),
      JSON.stringify({ auths: { [locked.host]: { auth: 'd3Jvbmc6d3Jvbmc=' } } }),
    );
    const t = context(
      {
        image: `${locked.host}/airtasks/private:1.0`,
        registryAuthVariable: 'registry_auth',
        command: 'echo var ok',
      },
      { registry_auth: 'robot:s3cret-pw' },
    );
    expect((await dockerOperator.execute(t.ctx)).output).to.equal('var ok');
    expect(t.sink.text()).to.not.contain('s3cret-pw');
    expect(t.reads).to.deep.equal(['registry_auth']);
  });

  it('fails before contacting the engine when the auth variable is missing', async function () {
    const t = context({ image: `${locked.host}/airtasks/private:1.0`, registryAuthVariable: 'nope' });
    const err = await fails(dockerOperator.execute(t.ctx));
    expect(err.message).to.equal('variable "nope" (registryAuthVariable) does not exist');
    expect(await imageExists(d, `${locked.host}/airtasks/private:1.0`)).to.equal(false);
  });
});
