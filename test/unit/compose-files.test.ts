import { expect } from 'chai';
import { toComposeFiles } from '../../src/services/compose-files.js';
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
          update_config: { parallelism: 1, order: 'start-first' },
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
      networks: {
        hostnet: { external: true, name: 'host' },
        other: { driver: 'bridge' },
        backend: {
          driver: 'overlay',
          attachable: true,
          driver_opts: { encrypted: 'true' },
          labels: { a: 'b' },
        },
        shared: { driver: 'overlay', external: true },
      },
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
    expect(over!.networks).to.deep.equal({
      other: { driver: 'bridge' },
      backend: { labels: { a: 'b' } },
      shared: { driver: 'overlay', external: true },
    });
    expect(over!.services.proxy).to.deep.equal({ deploy: { replicas: 0 } });
    expect(over!.services.proxy, 'only the first file sets restart').to.not.have.property('restart');
  });

  it('leaves the autoscaler out of every file: it resizes swarm services, compose runs none', () => {
    const withAutoscaler: StackFile = {
      services: {
        ...stack.services,
        scaler: { image: 'app:1', deploy: { labels: { 'io.airtasks.component': 'autoscaler' } } },
      },
    };
    const override: StackFile = { services: { scaler: { environment: { A: '1' } }, worker: {} } };
    const [base, over] = toComposeFiles(
      [
        { file: '/proj/deploy/stack.yml', value: withAutoscaler },
        { file: '/proj/override.yml', value: override },
      ],
      { secretFile },
    );
    expect(Object.keys(base!.services)).to.have.members(['worker', 'proxy']);
    expect(Object.keys(over!.services)).to.deep.equal(['worker']);
  });

  it('drops variables whose value is a swarm template, which compose would pass as text', () => {
    const web: StackFile = {
      services: {
        web: {
          image: 'app:1',
          environment: {
            AIRTASKS_STACK: '{{index .Service.Labels "com.docker.stack.namespace"}}',
            NODE: '{{.Node.Hostname}}',
            KEEP: 'a {{ literal }} text',
            PLAIN: '1',
          },
        },
      },
    };
    const [out] = toComposeFiles([{ file: '/proj/deploy/stack.yml', value: web }], { secretFile });
    expect(out!.services.web!.environment).to.deep.equal({ KEEP: 'a {{ literal }} text', PLAIN: '1' });
  });
});
