/** Numbered, append-only migrations, recorded in a ledger and serialised by an advisory lock. */
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Db } from './db.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
const LOCK_KEY = 0x61697274; // 'airt': one key for every schema; migrations are rare and short

export interface MigrationResult {
  schema: string;
  applied: string[];
  current: number;
}

export async function migrate(db: Db): Promise<MigrationResult> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{4}_.+\.sql$/.test(f)).sort();
  return db.tx(async (c) => {
    await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
    await c.query(`CREATE SCHEMA IF NOT EXISTS "${db.schema}"`);
    await c.query(`CREATE TABLE IF NOT EXISTS "${db.schema}".migrations (
      id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set(
      (await c.query<{ id: number }>(`SELECT id FROM "${db.schema}".migrations`)).rows.map((r) => r.id),
    );
    const applied: string[] = [];
    let current = Math.max(0, ...done);
    for (const f of files) {
      const id = Number(f.slice(0, 4));
      if (done.has(id)) continue;
      await c.query(`SET LOCAL search_path TO "${db.schema}"`);
      await c.query(await readFile(MIGRATIONS_DIR + f, 'utf8'));
      await c.query(`INSERT INTO "${db.schema}".migrations (id, name) VALUES ($1, $2)`, [id, f]);
      applied.push(f);
      current = Math.max(current, id);
    }
    return { schema: db.schema, applied, current };
  });
}
