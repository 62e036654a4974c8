/**
 * `airtasks build` against the real Docker engine: a scaffolded project built FROM the local base
 * image (node + bash + busybox, no registry), the stack file rewritten, and the image able to run the CLI
 * on its own DAGs.
 */
import { expect } from 'chai';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import { parse } from 'yaml';
import { runCli } from '../helpers/cli.js';
import { buildImage, ensureBaseImage, requireDocker, startFakeRegistry } from '../helpers/docker.js';
import { installAirtasks, scaffoldTestProject, type TestProject } from '../helpers/project.js';

/** Runs a command in a container of the image (no network); returns its exit code and output. */
async function runInImage(d: Docker, image: string, cmd: string[], entrypoint?: string[]) {
  const c = await d.createContainer({
    Image: image,
    Cmd: cmd,
    ...(entrypoint ? { Entrypoint: entrypoint } : {}),
    HostConfig: { NetworkMode: 'none' },
  });
  try {
    await c.start();
    const { StatusCode } = (await c.wait()) as { StatusCode: number };
    const logs = (await c.logs({ stdout: true, stderr: true })) as unknown as Buffer;
    // Multiplexed frames: 8-byte headers; strip them to text.
    let out = '';
    for (let i = 0; i + 8 <= logs.length;) {
      const n = logs.readUInt32BE(i + 4);
      out += logs.subarray(i + 8, i + 8 + n).toString('utf8');
      i += 8 + n;
    }
    return { code: StatusCode, out };
  } finally {
    await c.remove({ force: true }).catch(() => undefined);
  }
}

describe('integration: airtasks build', function () {
  this.timeout(300_000);
  let d: Docker;
  let base: string;
  let project: TestProject;
  let image: string;

  before(async function () {
    d = await requireDocker(this);
    base = await ensureBaseImage(d);
    project = await scaffoldTestProject([]);
    image = `airtasks-test/${project.name}`;
    const cfgFile = path.join(project.dir, 'airtasks.json');
    const cfg = JSON.parse(await readFile(cfgFile, 'utf8'));
    await writeFile(cfgFile, JSON.stringify({ ...cfg, image }, null, 2));
  });
  const pushedImages: string[] = [];
  after(async () => {
    for (const ref of [`${image}:t1`, ...pushedImages])
      await d
        ?.getImage(ref)
        .remove({ force: true })
        .catch(() => undefined);
    await project?.remove();
  });

  it('says to install node_modules first when airtasks is not installed', async () => {
    const r = await runCli(['build', '--tag', 't0'], {}, 60_000, { cwd: project.dir });
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('npm ci --omit=dev');
  });

  it('builds the image offline from the base image, honours .dockerignore and rewrites the stack file', async () => {
    await installAirtasks(project.dir);
    await writeFile(path.join(project.dir, 'dags', 'debug.log'), 'left out by .dockerignore');
    const stackBefore = await readFile(path.join(project.dir, 'deploy/stack.yml'), 'utf8');

    const r = await runCli(
      ['build', '--tag', 't1', '--build-arg', `BASE_IMAGE=${base}`, '--json'],
      {},
      240_000,
      { cwd: project.dir },
    );
    expect(r.code, r.stderr).to.equal(0);
    const result = JSON.parse(r.stdout) as { imageId: string; tags: string[]; servicesUpdated: string[] };
    expect(result.tags).to.deep.equal([`${image}:t1`]);
    expect(result.imageId).to.match(/^sha256:[0-9a-f]{64}$/);
    expect((await d.getImage(`${image}:t1`).inspect()).Id).to.equal(result.imageId);
    expect(result.servicesUpdated).to.have.members(['scheduler', 'worker-worker', 'autoscaler', 'web']);

    // The image knows its own reference: docker tasks running the project image use this very tag.
    const env = (await d.getImage(`${image}:t1`).inspect()).Config.Env ?? [];
    expect(env).to.include(`AIRTASKS_IMAGE=${image}:t1`);

    const stackAfter = await readFile(path.join(project.dir, 'deploy/stack.yml'), 'utf8');
    const stack = parse(stackAfter, { merge: true });
    expect(stack.services.scheduler.image).to.equal(`${image}:t1`);
    expect(stack.services['worker-worker'].image).to.equal(`${image}:t1`);
    expect(stack.services.autoscaler.image).to.equal(`${image}:t1`);
    expect(stack.services.postgres.image).to.equal('postgres:16-alpine');
    // Only the image lines changed: every comment and the rest of the layout are as they were.
    const changed = stackAfter.split('\n').filter((l, i) => l !== stackBefore.split('\n')[i]);
    // scheduler, worker-worker, autoscaler and web: one image line each.
    expect(changed).to.deep.equal(Array(4).fill(`    image: ${image}:t1`));

    // The image runs the CLI on its own DAGs (the entrypoint is airtasks).
    const v = await runInImage(d, `${image}:t1`, ['dags', 'validate']);
    expect(v.code, v.out).to.equal(0);
    expect(v.out).to.include('example_greetings').and.include('0 error(s)');
    const ls = await runInImage(
      d,
      `${image}:t1`,
      ['-c', 'ls /app/dags; test ! -e /app/dags/debug.log'],
      ['sh'],
    );
    expect(ls.code, ls.out).to.equal(0);
    expect(ls.out).to.include('greetings.ts');
  });

  it('shows the build error from the engine with the last output lines', async () => {
    await mkdir(path.join(project.dir, 'broken'), { recursive: true });
    const dockerfile = path.join(project.dir, 'Dockerfile');
    const original = await readFile(dockerfile, 'utf8');
    await writeFile(dockerfile, `${original}\nRUN echo about to fail && exit 3\n`);
    try {
      const r = await runCli(
        ['build', '--tag', 't1', '--build-arg', `BASE_IMAGE=${base}`, '--no-stack'],
        {},
        240_000,
        {
          cwd: project.dir,
        },
      );
      expect(r.code).to.equal(1);
      expect(r.stderr).to.include('the image build failed').and.include('about to fail');
    } finally {
      await writeFile(dockerfile, original);
      await rm(path.join(project.dir, 'broken'), { recursive: true, force: true });
    }
  });

  it('stops at the first step, naming what is missing, when the base image has no bash', async () => {
    const noBash = `airtasks-test/no-bash-${project.name}`;
    pushedImages.push(`${noBash}:local`);
    await buildImage(d, `${noBash}:local`, `FROM ${base}\nRUN rm /bin/bash\n`);
    const r = await runCli(
      ['build', '--tag', 't3', '--build-arg', `BASE_IMAGE=${noBash}:local`, '--no-stack'],
      {},
      240_000,
      { cwd: project.dir },
    );
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stderr).to.include('BASE_IMAGE has no bash');
  });

  it('--push sends the image to its registry and reports the pushed tag and digest', async () => {
    // A registry on loopback (the engine speaks plain HTTP to 127.0.0.0/8) that keeps what is pushed.
    const registry = await startFakeRegistry({ name: 'unused', tag: 'unused' });
    const cfgFile = path.join(project.dir, 'airtasks.json');
    const original = await readFile(cfgFile, 'utf8');
    const repo = `${registry.host}/airtasks-test/${project.name}`;
    pushedImages.push(`${repo}:t2`);
    try {
      await writeFile(cfgFile, JSON.stringify({ ...JSON.parse(original), image: repo }, null, 2));
      const r = await runCli(
        ['build', '--tag', 't2', '--push', '--build-arg', `BASE_IMAGE=${base}`, '--no-stack', '--json'],
        {},
        240_000,
        { cwd: project.dir },
      );
      expect(r.code, r.stderr).to.equal(0);
      const result = JSON.parse(r.stdout) as { imageId: string; pushed: boolean; pushedRefs: string[] };
      const digest = registry.pushed.get(`airtasks-test/${project.name}:t2`);
      expect(digest, registry.requests.join('\n')).to.match(/^sha256:[0-9a-f]{64}$/);
      expect(result.pushed).to.equal(true);
      expect(result.pushedRefs).to.deep.equal([`${repo}:t2`, `${repo}@${digest}`]);
      // The registry holds the image that was built: its config blob is the image id.
      expect(registry.blob(result.imageId), 'config blob').to.not.equal(undefined);
      const inspect = await d.getImage(`${repo}:t2`).inspect();
      expect(inspect.RepoDigests).to.include(`${repo}@${digest}`);
    } finally {
      await writeFile(cfgFile, original);
      await registry.close();
    }
  });
});
