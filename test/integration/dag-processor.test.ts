import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { DagProcessor } from '../../src/engine/dag/processor.js';
import { getDag, getVersion, listDags, listImportErrors } from '../../src/engine/store/dags.js';
import { removeDir, tempDir, writeDagFile } from '../helpers/engine.js';
import { freshDb, requireService } from '../helpers/env.js';

type TestDb = Awaited<ReturnType<typeof freshDb>>;

const GOOD = `
const d = dag('good', { description: 'a good DAG', tags: ['t1'] });
const a = d.bash('a', { command: 'echo a' });
d.bash('b', { command: 'echo b', upstream: a });
export default d;
`;

const THROWS = `
dag('never_seen');
throw new Error('boom at import time');
`;

const SYNTAX = `
const d = dag('broken_syntax';
export default d;
`;

const CYCLE = `
const d = dag('cyclic');
const x = d.bash('x', { command: 'echo x' });
const y = d.bash('y', { command: 'echo y', upstream: x });
const z = d.bash('z', { command: 'echo z', upstream: y });
x.setUpstream(z);
export default d;
`;

const TWO = `
export const first = dag('two_first');
first.bash('t', { command: 'echo 1' });
const second = dag('two_second');
second.bash('t', { command: 'echo 2' });
export const more = [second];
`;

describe('DagProcessor', function () {
  this.timeout(40_000);
  let db: TestDb;
  let folder: string;
  let processor: DagProcessor;

  before(async function () {
    await requireService(this, 'postgres');
    db = await freshDb();
    folder = await tempDir('airtasks-dags-');
    await writeDagFile(folder, 'good.ts', GOOD);
    await writeDagFile(folder, 'throws.ts', THROWS);
    await writeDagFile(folder, 'syntax.ts', SYNTAX);
    await writeDagFile(folder, 'cycle.ts', CYCLE);
    await writeDagFile(folder, 'two.ts', TWO);
    // Not DAG files: skipped by the folder scan.
    await writeFile(path.join(folder, 'notes.txt'), 'not a dag');
    await writeFile(path.join(folder, 'helper.test.ts'), 'throw new Error("tests are not DAG files")');
    processor = new DagProcessor(db, folder, { parseTimeoutMs: 20_000 });
  });

  after(async () => {
    await db?.drop();
    await removeDir(folder);
  });

  it('stores the good DAGs and an import error naming the problem for each bad file', async () => {
    const report = await processor.sync();
    expect(report.files).to.equal(5);
    expect(report.parsed).to.equal(5);
    expect(report.changed.sort()).to.deep.equal(['good', 'two_first', 'two_second']);
    expect(report.errors.map((e) => e.fileloc).sort()).to.deep.equal(['cycle.ts', 'syntax.ts', 'throws.ts']);

    const dags = await listDags(db);
    expect(dags.map((d) => [d.dag_id, d.fileloc, d.is_active])).to.deep.equal([
      ['good', 'good.ts', true],
      ['two_first', 'two.ts', true],
      ['two_second', 'two.ts', true],
    ]);
    const good = dags[0]!;
    expect(good).to.include({ description: 'a good DAG', is_paused: false });
    expect(good.tags).to.deep.equal(['t1']);
    const version = await getVersion(db, good.hash);
    expect(version!.dagId).to.equal('good');
    expect(version!.fileloc).to.equal('good.ts');
    expect(version!.tasks.map((t) => [t.taskId, t.upstream])).to.deep.equal([
      ['a', []],
      ['b', ['a']],
    ]);

    const errors = new Map((await listImportErrors(db)).map((e) => [e.fileloc, e.message]));
    expect([...errors.keys()]).to.deep.equal(['cycle.ts', 'syntax.ts', 'throws.ts']);
    expect(errors.get('throws.ts')).to.include('boom at import time');
    // The syntax error says where: the file and the position.
    expect(errors.get('syntax.ts')).to.match(/syntax\.ts:\d+:\d+/);
    // The cycle is named with its path, in one of its rotations.
    const cycle = errors.get('cycle.ts')!;
    expect(cycle).to.include('"cyclic"');
    const m = /cycle: (\w) -> (\w) -> (\w) -> (\w)/.exec(cycle);
    expect(m, `a cycle path in: ${cycle}`).to.not.equal(null);
    expect(m![1]).to.equal(m![4]);
    expect(['x -> y -> z', 'y -> z -> x', 'z -> x -> y']).to.include(`${m![1]} -> ${m![2]} -> ${m![3]}`);
    expect(await getDag(db, 'cyclic')).to.equal(undefined);
    expect(await getDag(db, 'never_seen')).to.equal(undefined);
  });

  it('parses nothing when nothing changed', async () => {
    const before = await getDag(db, 'good');
    const report = await processor.sync();
    expect(report.parsed).to.equal(0);
    expect(report.changed).to.deep.equal([]);
    expect((await getDag(db, 'good'))!.hash).to.equal(before!.hash);
  });

  it('a changed file changes the hash and stores a new version; the old version stays', async () => {
    const before = (await getDag(db, 'good'))!;
    await writeDagFile(folder, 'good.ts', GOOD.replace("'echo b'", "'echo b changed'"));
    const report = await processor.sync();
    expect(report.parsed).to.equal(1);
    expect(report.changed).to.deep.equal(['good']);
    const after = (await getDag(db, 'good'))!;
    expect(after.hash).to.not.equal(before.hash);
    expect((await getVersion(db, after.hash))!.tasks[1]!.args).to.deep.equal({ command: 'echo b changed' });
    // Runs pinned to the old version can still read it.
    expect((await getVersion(db, before.hash))!.tasks[1]!.args).to.deep.equal({ command: 'echo b' });

    // Re-parsing the same content (forced) keeps the hash.
    const forced = await processor.sync(true);
    expect(forced.changed).to.deep.equal([]);
    expect((await getDag(db, 'good'))!.hash).to.equal(after.hash);
  });

  it('a fixed file loses its import error; a file no longer defining a DAG deactivates it', async () => {
    await writeDagFile(folder, 'cycle.ts', CYCLE.replace('x.setUpstream(z);', ''));
    await writeDagFile(
      folder,
      'two.ts',
      `export const first = dag('two_first');\nfirst.bash('t', { command: 'echo 1' });\n`,
    );
    const report = await processor.sync();
    expect(report.changed).to.include('cyclic');
    expect((await listImportErrors(db)).map((e) => e.fileloc)).to.deep.equal(['syntax.ts', 'throws.ts']);
    expect((await getDag(db, 'cyclic'))!.is_active).to.equal(true);
    expect((await getDag(db, 'two_first'))!.is_active).to.equal(true);
    expect((await getDag(db, 'two_second'))!.is_active).to.equal(false);
  });

  it('deleting a file deactivates its DAGs and drops its import error; history stays', async () => {
    await rm(path.join(folder, 'two.ts'));
    await rm(path.join(folder, 'throws.ts'));
    const report = await processor.sync();
    expect(report.files).to.equal(3);
    expect((await listDags(db)).map((d) => d.dag_id)).to.deep.equal(['cyclic', 'good']);
    const all = await listDags(db, true);
    expect(all.filter((d) => !d.is_active).map((d) => d.dag_id)).to.deep.equal(['two_first', 'two_second']);
    expect((await listImportErrors(db)).map((e) => e.fileloc)).to.deep.equal(['syntax.ts']);

    // The file comes back: its DAG is active again.
    await writeDagFile(folder, 'two.ts', TWO);
    await processor.sync();
    expect((await getDag(db, 'two_first'))!.is_active).to.equal(true);
    expect((await getDag(db, 'two_second'))!.is_active).to.equal(true);
  });

  it('refuses a DAG id that another file already defines', async () => {
    await writeDagFile(
      folder,
      'dup.ts',
      `export default dag('good').bash('other', { command: 'true' }).dag;\n`,
    );
    const report = await processor.sync();
    expect(report.errors.map((e) => e.fileloc)).to.deep.equal(['dup.ts']);
    const errors = new Map((await listImportErrors(db)).map((e) => [e.fileloc, e.message]));
    expect(errors.get('dup.ts')).to.include('"good"').and.include('good.ts');
    expect((await getDag(db, 'good'))!.fileloc).to.equal('good.ts');
  });
});
