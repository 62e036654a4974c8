/**
 * The dags folder kept in sync with the store: watched for changes, and scanned in full on a timer as a
 * safety net (the only way where the folder cannot be watched). One scan at a time; a change seen during
 * a scan is followed by another. Scans run beside scheduling, never before it: a file that hangs at
 * import holds only its own parse (until the parse timeout), not the runs of the DAGs already known.
 */
import type { Logger } from '../../core/logger.js';
import type { DagProcessor, SyncReport } from '../dag/processor.js';

export class DagsFolder {
  /** The scan in progress, if any. */
  private current: Promise<void> | null = null;
  /** A change was seen while a scan ran: scan again when it ends. */
  private scanAgain = false;
  private unwatch: (() => void) | null = null;
  private first: Promise<void> = Promise.resolve();

  constructor(
    private readonly processor: DagProcessor,
    private readonly log: Logger,
    private readonly stopping: AbortSignal,
  ) {}

  /** Starts watching the folder and its first scan, which goes on in the background (see parsed()). */
  start(): void {
    this.unwatch = this.processor.watch(() => void this.scan());
    const started = Date.now();
    this.first = this.scan(false, (r) =>
      this.log.info(
        { files: r.files, dags: r.dags, importErrors: r.errors.length, ms: Date.now() - started },
        'dags folder parsed',
      ),
    );
  }

  /** Resolves when the first scan has ended (parsed or failed). */
  parsed(): Promise<void> {
    return this.first;
  }

  /** Whether changes are seen as they happen (else only by the timer's scans). */
  get watched(): boolean {
    return this.unwatch !== null;
  }

  /** Re-reads the dags folder now; while a scan runs, once more after it. */
  scan(force = false, onDone?: (r: SyncReport) => void): Promise<void> {
    if (this.stopping.aborted) return Promise.resolve();
    if (this.current) {
      this.scanAgain = true;
      return this.current;
    }
    const run = async () => {
      try {
        // Not `onDone?.(await sync())`: without onDone that skips the sync (and its await) altogether,
        // and a run with no await would clear `current` before it is set, so no scan would run again.
        const report = await this.processor.sync(force, this.stopping);
        onDone?.(report);
      } catch (err) {
        if (!this.stopping.aborted) this.log.error({ err: (err as Error).message }, 'DAG folder scan failed');
      } finally {
        this.current = null;
        if (this.scanAgain) {
          this.scanAgain = false;
          void this.scan();
        }
      }
    };
    this.current = run();
    return this.current;
  }

  /** Stops watching; a scan in progress is killed (the scheduler's stop signal) and waited for. */
  async stop(): Promise<void> {
    this.unwatch?.();
    await this.current;
  }
}
