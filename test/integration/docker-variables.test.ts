import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type Docker from 'dockerode';
import { findTaskContainers } from '../../src/docker/containers.js';
import { dockerOperator } from '../../src/engine/operators/docker.js';
import { HOST_TMP_ENV } from '../../src/engine/operators/docker-host-dir.js';
import {
  BASE_IMAGE,
  dockerContext,
  ensureBaseImage,
  removeRunContainers,
  requireDocker,
  type TestContext,
} from '../helpers/docker.js';
import { fails } from '../helpers/operators.js';

const SECRET = 'pa55-w0rd-do-not-log';
const MULTILINE = 'line one\n  line two with "quotes" and $dollar\n\nlast line without newline';

describe('docker operator: variables as files (real engine)', function () {
  this.timeout(60_000);
  let d: Docker;
  let hostTmp: string;
  let previousTmp: string | undefined;
  const runs: string[] = [];
  const context = (args: Record<string, unknown>, variables: Record<string, string> = {}): TestContext => {
    const t = dockerContext({ networkMode: 'host', ...args }, { variables });
    runs.push(t.runId);
    return t;
  };
  const leftovers = async () => readdir(hostTmp);
  const noValueInLogs = (t: TestContext, ...values: string[]) => {
    for (const v of values) {
      for (const part of v.split('\n').filter((x) => x.trim().length > 3)) {
        expect(t.sink.text(), 'a variable value reached the log').to.not.contain(part);
      }
    }
  };

  before(async function () {
    this.timeout(120_000);
    d = await requireDocker(this);
    await ensureBaseImage(d);
    hostTmp = await mkdtemp(path.join(os.tmpdir(), 'airtasks-vars-test-'));
    previousTmp = process.env[HOST_TMP_ENV];
    process.env[HOST_TMP_ENV] = hostTmp;
  });

  after(async function () {
    if (previousTmp === undefined) delete process.env[HOST_TMP_ENV];
    else process.env[HOST_TMP_ENV] = previousTmp;
    if (hostTmp) await rm(hostTmp, { recursive: true, force: true });
    if (d) await removeRunContainers(d, runs);
  });

  it('mounts one file per key, named after the key, under /run/variables', async function () {
    const t = context(
      {
        image: BASE_IMAGE,
        variables: ['api_token', 'config'],
        command: 'ls /run/variables; cat /run/variables/api_token',
      },
      { api_token: SECRET, config: MULTILINE },
    );
    const r = await dockerOperator.execute(t.ctx);
    expect(t.sink.of('stdout').slice(0, 2)).to.deep.equal(['api_token', 'config']);
    expect(r.output).to.equal(SECRET);
    expect(t.reads).to.deep.equal(['api_token', 'config']);
    expect(await leftovers(), 'host temp dir removed').to.deep.equal([]);
  });

  it('keeps multi-line values byte for byte', async function () {
    const t = context(
      {
        image: BASE_IMAGE,
        variables: ['config'],
        command: 'cat /run/variables/config; echo; sha256sum /run/variables/config',
        output: 'all',
      },
      { config: MULTILINE },
    );
    const r = await dockerOperator.execute(t.ctx);
    const sha = createHash('sha256').update(MULTILINE).digest('hex');
    expect(r.output).to.equal(`${MULTILINE}\n${sha}  /run/variables/config`);
  });

  it('supports keys with spaces, a custom mount point, and non-root users', async function () {
    const t = context(
      {
        image: BASE_IMAGE,
        variables: ['my key', 'other'],
        variablesMountPoint: '/etc/app vars',
        user: '65534:65534',
        command:
          'cat "/etc/app vars/my key"; echo; ls "/etc/app vars" | wc -l; test ! -e /run/variables && echo no-default',
        output: 'all',
      },
      { 'my key': 'spaced value', other: '' },
    );
    const r = await dockerOperator.execute(t.ctx);
    expect(r.output).to.equal('spaced value\n2\nno-default');
  });

  it('mounts an empty folder for an empty list', async function () {
    const t = context({
      image: BASE_IMAGE,
      variables: [],
      command: 'test -d /run/variables && ls -A /run/variables | wc -l',
    });
    expect((await dockerOperator.execute(t.ctx)).output).to.equal('0');
    expect(t.reads).to.deep.equal([]);
  });

  it('mounts each key at its own path with the key -> path form', async function () {
    const t = context(
      {
        image: BASE_IMAGE,
        variables: { 'db password': '/etc/db/password', config: '/app/config.ini' },
        command: 'cat /etc/db/password; echo; head -1 /app/config.ini; test ! -e /run/variables && echo ok',
        output: 'all',
      },
      { 'db password': SECRET, config: MULTILINE },
    );
    const r = await dockerOperator.execute(t.ctx);
    expect(r.output).to.equal(`${SECRET}\nline one\nok`);
  });

  it('mounts the files read-only', async function () {
    const t = context(
      { image: BASE_IMAGE, variables: ['k'], command: 'echo changed > /run/variables/k' },
      { k: 'v' },
    );
    await fails(dockerOperator.execute(t.ctx));
    expect(t.sink.of('stderr').join('\n')).to.match(/Read-only file system/i);
  });

  it('fails before any container is created when a key is missing, naming every missing key', async function () {
    const t = context(
      // The image does not exist and may not be pulled: the variable check must come first.
      {
        image: 'airtasks-test/does-not-exist:never',
        pullPolicy: 'never',
        variables: ['present', 'gone', 'also gone'],
      },
      { present: 'x' },
    );
    const err = await fails(dockerOperator.execute(t.ctx));
    expect(err.message).to.equal(
      'variables "gone", "also gone" do not exist: set them with `airtasks variables set`',
    );
    expect(await findTaskContainers(d, { runId: t.runId })).to.have.length(0);
    expect(await leftovers()).to.deep.equal([]);
    expect(t.sink.lines.filter((l) => /container|pull/.test(l.line))).to.deep.equal([]);
  });

  it('refuses a key that cannot be a file name, before reading variables', async function () {
    const t = context({ image: BASE_IMAGE, variables: ['a/b'] }, { 'a/b': 'x' });
    const err = await fails(dockerOperator.execute(t.ctx));
    expect(err.message).to.match(/variable key "a\/b" cannot be a file name under \/run\/variables/);
    expect(t.reads).to.deep.equal([]);
  });

  it('removes the host temp dir after a failing container, and never logs values', async function () {
    const t = context(
      { image: BASE_IMAGE, variables: ['api_token', 'config'], command: 'ls /run/variables; exit 7' },
      { api_token: SECRET, config: MULTILINE },
    );
    const err = await fails(dockerOperator.execute(t.ctx));
    expect(err.exitCode).to.equal(7);
    expect(await leftovers()).to.deep.equal([]);
    noValueInLogs(t, SECRET, MULTILINE);
  });

  it('removes the host temp dir when the container cannot even be created', async function () {
    const t = context(
      { image: BASE_IMAGE, variables: ['api_token'], hostConfig: { Runtime: 'airtasks-no-such-runtime' } },
      { api_token: SECRET },
    );
    const err = await fails(dockerOperator.execute(t.ctx));
    expect(err.message).to.match(/creating the container failed: .*airtasks-no-such-runtime/);
    expect(await leftovers()).to.deep.equal([]);
    noValueInLogs(t, SECRET);
  });

  it('removes the host temp dir when the task is stopped', async function () {
    const t = context(
      { image: BASE_IMAGE, variables: ['api_token'], command: 'echo up; sleep 60' },
      { api_token: SECRET },
    );
    const p = dockerOperator.execute(t.ctx);
    const deadline = Date.now() + 15_000;
    while (!t.sink.of('stdout').includes('up') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(await leftovers()).to.have.length(1);
    t.abort.abort('cancelled');
    await fails(p);
    expect(await leftovers()).to.deep.equal([]);
    expect(await findTaskContainers(d, { runId: t.runId })).to.have.length(0);
  });
});
