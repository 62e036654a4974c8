import { readdir } from 'node:fs/promises';
import { expect } from 'chai';
import { Db } from '../../src/engine/store/db.js';
import { migrate } from '../../src/engine/store/migrate.js';
import { dropSchema } from '../helpers/engine.js';
import { DATABASE_URL, requireService, uniqueName } from '../helpers/env.js';

const MIGRATIONS = new URL('../../src/engine/store/migrations/', import.meta.url);

async function migrationFiles(): Promise<string[]> {
  return (await readdir(MIGRATIONS)).filter((f) => /^\d{4}_.+\.sql$/.test(f)).sort();
}

async function tablesOf(db: Db): Promise<string[]> {
  const r = await db.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`,
    [db.schema],
  );
  return r.rows.map((x) => x.table_name);
}

describe('migrations', function () {
  const made: Db[] = [];
  const schemas = new Set<string>();

  before(async function () {
    await requireService(this, 'postgres');
  });

  function newDb(schema: string) {
    const db = new Db({ url: DATABASE_URL, schema });
    made.push(db);
    schemas.add(schema);
    return db;
  }

  after(async () => {
    for (const db of made) await db.close();
    for (const s of schemas) await dropSchema(s);
  });

  it('applies every migration once; migrating again is a no-op', async () => {
    const files = await migrationFiles();
    expect(files.length).to.be.greaterThan(0);
    const db = newDb(uniqueName('m'));

    const first = await migrate(db);
    expect(first.schema).to.equal(db.schema);
    expect(first.applied).to.deep.equal(files);
    expect(first.current).to.equal(Number(files.at(-1)!.slice(0, 4)));
    const tables = await tablesOf(db);
    expect(tables).to.include.members([
      'dags',
      'dag_runs',
      'task_instances',
      'outbox',
      'queue_messages',
      'migrations',
    ]);

    // Some data survives a second migrate: nothing is re-created.
    await db.query(`INSERT INTO variables (key, value) VALUES ('k', 'v')`);
    const second = await migrate(db);
    expect(second.applied).to.deep.equal([]);
    expect(second.current).to.equal(first.current);
    expect(await tablesOf(db)).to.deep.equal(tables);
    const ledger = await db.query<{ id: number; name: string }>(
      `SELECT id, name FROM migrations ORDER BY id`,
    );
    expect(ledger.rows.map((r) => r.name)).to.deep.equal(files);
    expect((await db.query(`SELECT value FROM variables WHERE key = 'k'`)).rows).to.deep.equal([
      { value: 'v' },
    ]);
  });

  it('two concurrent migrate() calls on a fresh schema both succeed and create the tables once', async () => {
    const files = await migrationFiles();
    const schema = uniqueName('m');
    // Two Db instances: as two processes (say a scheduler and a worker) starting at the same time.
    const a = newDb(schema);
    const b = newDb(schema);
    const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);

    // Exactly one of them applied the migrations; the other found them applied.
    expect([...ra.applied, ...rb.applied].sort()).to.deep.equal(files);
    expect([ra.applied.length, rb.applied.length].sort()).to.deep.equal([0, files.length]);
    expect(ra.current).to.equal(rb.current);
    const ledger = await a.query<{ id: number }>(`SELECT id FROM migrations`);
    expect(ledger.rowCount).to.equal(files.length);
    expect(await tablesOf(a)).to.include.members(['dags', 'task_instances', 'workers']);
  });

  it('keeps schemas apart: a migrated schema does not make another one look migrated', async () => {
    const a = newDb(uniqueName('m'));
    const b = newDb(uniqueName('m'));
    await migrate(a);
    expect(await tablesOf(b)).to.deep.equal([]);
    const rb = await migrate(b);
    expect(rb.applied).to.deep.equal(await migrationFiles());
  });
});
