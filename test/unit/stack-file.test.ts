import { expect } from 'chai';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { contextFilter } from '../../src/docker/build.js';
import {
  airtasksServices,
  loadStackDocument,
  saveStackDocument,
  setServiceImages,
  stackValue,
} from '../../src/services/stack-file.js';
import type { Project } from '../../src/services/config.js';
import { projectStackImages, setStackImages } from '../../src/services/stack-images.js';

const STACK = `# my stack: keep this comment
version: "3.8"
x-env: &env
  A: "1"
services:
  db:
    image: postgres:16-alpine # the database
  scheduler:
    image: team/dags:old
    environment: *env
    deploy:
      labels:
        io.airtasks.component: scheduler
  worker-gpu:
    # a GPU worker
    image: team/dags:old
    environment:
      <<: *env
      B: "2"
    deploy:
      labels: [io.airtasks.component=worker, io.airtasks.queue=gpu]
  other:
    image: team/dags:old
`;

describe('stack file edits', () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-stack-'))));
  after(() => rm(dir, { recursive: true, force: true }));

  it('sets the image of airtasks services only, keeping comments, anchors and layout', async () => {
    const file = path.join(dir, 'stack.yml');
    await writeFile(file, STACK);
    const doc = await loadStackDocument(file);
    const value = stackValue(doc);
    expect(value.services['worker-gpu']!.environment).to.deep.equal({ A: '1', B: '2' });
    const services = airtasksServices(value);
    expect(services).to.deep.equal(['scheduler', 'worker-gpu']);
    // By repository too: a service using the project image without a label.
    expect(airtasksServices(value, 'team/dags')).to.deep.equal(['scheduler', 'worker-gpu', 'other']);
    expect(setServiceImages(doc, services, 'team/dags:2.0')).to.deep.equal(['scheduler', 'worker-gpu']);
    await saveStackDocument(file, doc);
    const text = await readFile(file, 'utf8');
    expect(text).to.equal(
      STACK.replace('scheduler:\n    image: team/dags:old', 'scheduler:\n    image: team/dags:2.0').replace(
        '# a GPU worker\n    image: team/dags:old',
        '# a GPU worker\n    image: team/dags:2.0',
      ),
    );
  });

  it('reports a stack file without services', async () => {
    const file = path.join(dir, 'empty.yml');
    await writeFile(file, 'version: "3.8"\n');
    let err: Error | undefined;
    await loadStackDocument(file).catch((e: Error) => (err = e));
    expect(err?.message).to.include('no services');
  });
});

describe('build context filter (.dockerignore)', () => {
  it('leaves out matches, never the Dockerfile or .dockerignore, and walks folders with exceptions', () => {
    const f = contextFilter(['.git', '**/*.log', 'Dockerfile', '.dockerignore', 'deploy']);
    expect(f('.git', true)).to.equal(true);
    expect(f('dags/debug.log', false)).to.equal(true);
    expect(f('debug.log', false)).to.equal(true);
    expect(f('deploy', true)).to.equal(true);
    expect(f('dags/a.ts', false)).to.equal(false);
    expect(f('Dockerfile', false)).to.equal(false);
    expect(f('.dockerignore', false)).to.equal(false);
    const g = contextFilter(['data', '!data/keep.txt']);
    expect(g('data', true)).to.equal(false);
    expect(g('data/big.bin', false)).to.equal(true);
    expect(g('data/keep.txt', false)).to.equal(false);
  });
});

describe('the stack\'s third-party images (airtasks.json "images")', () => {
  const project = (images: unknown): Project => ({
    root: '/p',
    configFile: '/p/airtasks.json',
    config: { dagsFolder: 'dags', queues: {}, ...(images === undefined ? {} : { images }) },
  });

  it('reads the images a project sets, and refuses unknown keys and values that are no reference', () => {
    expect(projectStackImages(project(undefined))).to.equal(null);
    expect(projectStackImages(project({ postgres: 'mirror.local:5000/library/postgres:16' }))).to.deep.equal({
      postgres: 'mirror.local:5000/library/postgres:16',
    });
    expect(() => projectStackImages(project({ redis: 'redis:7' }))).to.throw(/postgres, rabbitmq, proxy/);
    expect(() => projectStackImages(project({ proxy: 'nginx latest' }))).to.throw(/images\.proxy/);
    expect(() => projectStackImages(project(['postgres']))).to.throw(/must be an object/);
  });

  it("sets the image of the services labelled with the image's key, keeping the rest of the file", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'airtasks-images-'));
    try {
      const file = path.join(dir, 'stack.yml');
      await writeFile(
        file,
        `services:
  postgres:
    image: postgres:16-alpine # the database
    deploy:
      labels:
        io.airtasks.image: postgres
  proxy:
    image: nginx:1.27-alpine
    deploy:
      labels: [io.airtasks.image=proxy]
  scheduler:
    image: team/dags:1
`,
      );
      const doc = await loadStackDocument(file);
      const changed = setStackImages(doc, stackValue(doc), {
        postgres: 'local/postgres:15',
        rabbitmq: 'local/rabbitmq:3',
      });
      expect(changed).to.deep.equal(['postgres']);
      await saveStackDocument(file, doc);
      const text = await readFile(file, 'utf8');
      expect(text).to.include('image: local/postgres:15 # the database');
      expect(text).to.include('image: nginx:1.27-alpine').and.include('image: team/dags:1');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
