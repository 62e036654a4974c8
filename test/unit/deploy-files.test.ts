import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { devOverride, requiredSecrets } from '../../src/services/deploy.js';

const run = promisify(execFile);
const ENTRYPOINT = path.resolve(import.meta.dirname, '../../deploy/proxy/entrypoint.sh');

describe('deploy: required secrets and the --dev override', () => {
  it('lists external secrets by their real names, later files overriding earlier ones', () => {
    const names = requiredSecrets([
      { services: {}, secrets: { a: { external: true }, b: { external: true }, local: { file: './x' } } },
      { services: {}, secrets: { b: { external: true, name: 'test_b' } } },
    ]);
    expect(names).to.deep.equal(['a', 'test_b']);
  });

  it('bind-mounts dags and plugins read-only into the named services only', () => {
    const o = parse(devOverride('/srv/proj', ['scheduler', 'worker-gpu']));
    expect(Object.keys(o.services)).to.deep.equal(['scheduler', 'worker-gpu']);
    expect(o.services.scheduler.volumes).to.deep.equal([
      '/srv/proj/dags:/app/dags:ro',
      '/srv/proj/plugins:/app/plugins:ro',
    ]);
  });
});

/** Basic auth on, TLS off. */
const AUTH_ONLY = {
  basic_auth_username: 'ada',
  basic_auth_password: 'pw',
  ssl_certificate: '\n',
  ssl_certificate_key: '\n',
};

describe('proxy entrypoint (nginx configuration from the four secrets)', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-proxy-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  async function render(secrets: Record<string, string>, nginxConf = '/nonexistent'): Promise<string> {
    for (const [k, v] of Object.entries(secrets)) await writeFile(path.join(dir, k), v);
    const conf = path.join(dir, 'default.conf');
    await run('sh', [ENTRYPOINT], {
      env: {
        ...process.env,
        AIRTASKS_SECRETS_DIR: dir,
        AIRTASKS_PROXY_CONF: conf,
        AIRTASKS_NGINX_CONF: nginxConf,
        AIRTASKS_PROXY_DRY_RUN: '1',
      },
    });
    return readFile(conf, 'utf8');
  }

  it('serves plain HTTP without auth when the secrets are blank', async () => {
    const conf = await render({
      basic_auth_username: '\n',
      basic_auth_password: '\n',
      ssl_certificate: '\n',
      ssl_certificate_key: '\n',
    });
    expect(conf).to.include('listen 80;').and.not.include('ssl_certificate').and.not.include('auth_basic');
  });

  it('turns on TLS and basic auth when their secrets have values', async () => {
    const conf = await render({
      basic_auth_username: 'ada\n',
      basic_auth_password: 'pw',
      ssl_certificate: 'CERT',
      ssl_certificate_key: 'KEY',
    });
    expect(conf).to.include('listen 443 ssl;').and.include(`ssl_certificate ${dir}/ssl_certificate;`);
    expect(conf).to.include('return 301 https://');
    expect(conf).to.include('auth_basic "airtasks"');
    const htpasswd = await readFile(path.join(dir, 'airtasks.htpasswd'), 'utf8');
    expect(htpasswd.startsWith('ada:')).to.equal(true);
  });

  it("leaves the password file readable by nginx's workers, who are not root", async () => {
    // Debian's nginx runs its workers as www-data, Alpine's as nginx: the user nginx.conf names.
    const nginxConf = path.join(dir, 'nginx.conf');
    await writeFile(nginxConf, 'user  nobody;\nworker_processes auto;\n');
    await render(AUTH_ONLY, nginxConf);
    const st = await stat(path.join(dir, 'airtasks.htpasswd'));
    const { stdout: gid } = await run('id', ['-g', 'nobody']);
    const groupReadable = (st.mode & 0o777) === 0o640 && st.gid === Number(gid.trim());
    expect(groupReadable || (st.mode & 0o777) === 0o644, (st.mode & 0o777).toString(8)).to.equal(true);
  });

  it("asks for the proxy's credentials on its own routes only, and passes RabbitMQ's paths undecoded", async () => {
    const conf = await render(AUTH_ONLY);
    const location = (prefix: string) =>
      conf.slice(conf.indexOf(`location ${prefix} {`)).split('\n    }')[0]!;
    // / is the dashboard (the web service), behind the proxy's basic auth; a `return` would answer
    // before auth_basic is checked.
    expect(location('/'))
      .to.include('auth_basic "airtasks"')
      .and.include('set $airtasks_web http://web:8080;')
      .and.include('proxy_pass $airtasks_web;')
      .and.not.include('return');
    // RabbitMQ's UI sends its own Authorization header: the proxy's auth stays out of its way.
    expect(location('/rabbitmq/')).to.not.include('auth_basic');
    // The path as the client sent it ($request_uri): %2F, the default vhost, reaches RabbitMQ encoded.
    expect(conf).to.include('map $request_uri $airtasks_rabbitmq_uri');
    expect(location('/rabbitmq/')).to.include('proxy_pass http://rabbitmq:15672$airtasks_rabbitmq_uri;');
  });
});
