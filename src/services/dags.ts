/** Listing, showing and validating DAGs. */
import { listDagFiles, parseDagFiles } from '../engine/dag/loader.js';
import type { SerializedDag } from '../engine/dag/types.js';
import { notFound } from '../engine/errors.js';
import * as dags from '../engine/store/dags.js';
import { resolveDagsFolder, type ConnectionOptions } from './config.js';
import { openEngine } from './engine.js';

export interface DagListing {
  dags: Array<{
    dagId: string;
    fileloc: string;
    hash: string;
    paused: boolean;
    tasks: number;
    updatedAt: string;
  }>;
  importErrors: Array<{ fileloc: string; message: string }>;
}

export async function listDags(o: ConnectionOptions): Promise<DagListing> {
  const e = await openEngine(o);
  try {
    const rows = await dags.listDags(e.db);
    const out: DagListing = { dags: [], importErrors: [] };
    for (const r of rows) {
      const v = await dags.getVersion(e.db, r.hash);
      out.dags.push({
        dagId: r.dag_id,
        fileloc: r.fileloc,
        hash: r.hash,
        paused: r.is_paused,
        tasks: v?.tasks.length ?? 0,
        updatedAt: r.updated_at.toISOString(),
      });
    }
    out.importErrors = (await dags.listImportErrors(e.db)).map((x) => ({
      fileloc: x.fileloc,
      message: x.message,
    }));
    return out;
  } finally {
    await e.close();
  }
}

export async function showDag(
  o: ConnectionOptions & { dagId: string },
): Promise<SerializedDag & { hash: string; paused: boolean }> {
  const e = await openEngine(o);
  try {
    const row = await dags.getDag(e.db, o.dagId);
    if (!row) throw notFound(`unknown DAG "${o.dagId}"`);
    const v = await dags.getVersion(e.db, row.hash);
    if (!v) throw notFound(`DAG "${o.dagId}" has no stored version`);
    return { ...v, hash: row.hash, paused: row.is_paused };
  } finally {
    await e.close();
  }
}

export interface ValidationReport {
  dagsFolder: string;
  files: number;
  dags: Array<{ dagId: string; fileloc: string; tasks: number }>;
  errors: Array<{ fileloc: string; message: string }>;
}

/** Imports every DAG file of the folder, with no database: a CI check for DAG folders. */
export async function validateDags(o: { dagsFolder?: string; cwd?: string }): Promise<ValidationReport> {
  const folder = resolveDagsFolder(o);
  const files = await listDagFiles(folder).catch((err: Error) => {
    throw notFound(`cannot read the dags folder ${folder}: ${err.message}`);
  });
  const results = await parseDagFiles(files);
  const report: ValidationReport = { dagsFolder: folder, files: files.length, dags: [], errors: [] };
  const owner = new Map<string, string>();
  for (const r of results) {
    if (r.error) {
      report.errors.push({ fileloc: r.fileloc, message: r.error });
      continue;
    }
    for (const d of r.dags) {
      const first = owner.get(d.dagId);
      if (first)
        report.errors.push({
          fileloc: r.fileloc,
          message: `DAG id "${d.dagId}" is already defined in ${first}`,
        });
      else owner.set(d.dagId, r.fileloc);
      report.dags.push({ dagId: d.dagId, fileloc: r.fileloc, tasks: d.tasks.length });
    }
  }
  return report;
}
