/** The DAG processor: keeps the store's DAGs in step with the files of a dags folder. */
import { watch as watchFolder, type FSWatcher } from 'node:fs';
import type { Db } from '../store/db.js';
import * as dags from '../store/dags.js';
import type { Logger } from '../../core/logger.js';
import { silentLogger } from '../../core/logger.js';
import { listDagFiles, parseDagFiles, type DagFile, type FileResult } from './loader.js';
import { dagHash } from './serialize.js';

export interface SyncReport {
  files: number;
  parsed: number;
  dags: number;
  changed: string[];
  errors: Array<{ fileloc: string; message: string }>;
}

export class DagProcessor {
  /** fileloc -> "mtime:size" as last parsed. */
  private readonly seen = new Map<string, string>();
  /** dag id -> fileloc that defines it, to refuse the same id from a second file. */
  private readonly owners = new Map<string, string>();

  constructor(
    private readonly db: Db,
    private readonly folder: string,
    private readonly opts: { logger?: Logger; parseTimeoutMs?: number; pausedOnCreation?: boolean } = {},
  ) {}

  /**
   * Calls onChange shortly after anything in the folder changes (inotify on Linux), so that a new or edited
   * DAG is picked up at once without stat-ing every file every few seconds; the caller's periodic scan stays
   * as a safety net (and is all there is where the folder cannot be watched). Returns a stop function, or
   * null when the folder cannot be watched.
   */
  watch(onChange: () => void): (() => void) | null {
    let timer: NodeJS.Timeout | null = null;
    let watcher: FSWatcher;
    try {
      watcher = watchFolder(this.folder, { recursive: true }, () => {
        // Editors write a file in several steps: one scan for the burst.
        timer ??= setTimeout(() => {
          timer = null;
          onChange();
        }, 50);
      });
    } catch {
      return null;
    }
    watcher.on('error', (err) =>
      (this.opts.logger ?? silentLogger).warn(
        { err: err.message },
        'watching the dags folder failed; scanning only',
      ),
    );
    return () => {
      if (timer) clearTimeout(timer);
      watcher.close();
    };
  }

  /**
   * Parses new and changed files (all of them with force) and records the result. An abort kills the
   * parse in progress and records nothing.
   */
  async sync(force = false, signal?: AbortSignal): Promise<SyncReport> {
    const log = this.opts.logger ?? silentLogger;
    const files = await listDagFiles(this.folder);
    const changed = files.filter((f) => force || this.seen.get(f.fileloc) !== stamp(f));
    const present = new Set(files.map((f) => f.fileloc));
    const removed = [...this.seen.keys()].filter((k) => !present.has(k));
    const report: SyncReport = {
      files: files.length,
      parsed: changed.length,
      dags: 0,
      changed: [],
      errors: [],
    };
    if (changed.length === 0 && removed.length === 0 && this.seen.size > 0) return report;

    const results = await parseDagFiles(changed, this.opts.parseTimeoutMs, signal);
    for (const r of results) await this.record(r, report);
    for (const f of changed) this.seen.set(f.fileloc, stamp(f));
    for (const k of removed) {
      this.seen.delete(k);
      for (const [id, owner] of this.owners) if (owner === k) this.owners.delete(id);
    }
    await dags.deactivateMissingFiles(this.db, [...present]);
    report.dags = this.owners.size;
    for (const e of report.errors) log.warn({ fileloc: e.fileloc, error: e.message }, 'DAG import error');
    if (report.changed.length > 0) log.info({ dags: report.changed }, 'DAGs updated');
    return report;
  }

  private async record(r: FileResult, report: SyncReport) {
    let error = r.error;
    if (!error) {
      const clash = r.dags.find((d) => this.owners.has(d.dagId) && this.owners.get(d.dagId) !== r.fileloc);
      if (clash) error = `DAG id "${clash.dagId}" is already defined in ${this.owners.get(clash.dagId)}`;
    }
    if (error) {
      report.errors.push({ fileloc: r.fileloc, message: error });
      await dags.setImportError(this.db, r.fileloc, error);
      return;
    }
    for (const [id, owner] of this.owners) if (owner === r.fileloc) this.owners.delete(id);
    for (const d of r.dags) {
      this.owners.set(d.dagId, r.fileloc);
      if (await dags.upsertDag(this.db, d, dagHash(d), this.opts.pausedOnCreation))
        report.changed.push(d.dagId);
    }
    await dags.deactivateDags(
      this.db,
      r.fileloc,
      r.dags.map((d) => d.dagId),
    );
    await dags.clearImportError(this.db, r.fileloc);
  }
}

function stamp(f: DagFile): string {
  return `${f.mtimeMs}:${f.size}`;
}
