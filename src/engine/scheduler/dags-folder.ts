/**
 * The dags folder kept in sync with the store: watched for changes, and scanned in full on a timer as a
 * safety net (the only way where the folder cannot be watched). One scan at a time; a change seen during
 * a scan is followed by another.
 */
import type { Logger } from '../../core/logger.js';
import type { DagProcessor } from '../dag/processor.js';

export class DagsFolder {
  private scanning = false;
  /** A change was seen while a scan ran: scan again when it ends. */
  private scanAgain = false;
  private unwatch: (() => void) | null = null;

  constructor(
    private readonly processor: DagProcessor,
    private readonly log: Logger,
    private readonly stopping: AbortSignal,
  ) {}

  /** Starts watching the folder, then scans it once. */
  async start(): Promise<void> {
    this.unwatch = this.processor.watch(() => void this.scan());
    await this.scan();
  }

  /** Whether changes are seen as they happen (else only by the timer's scans). */
  get watched(): boolean {
    return this.unwatch !== null;
  }

  /** Re-reads the dags folder now. */
  async scan(force = false): Promise<void> {
    if (this.stopping.aborted) return;
    if (this.scanning) {
      this.scanAgain = true;
      return;
    }
    this.scanning = true;
    try {
      await this.processor.sync(force);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'DAG folder scan failed');
    } finally {
      this.scanning = false;
      if (this.scanAgain) {
        this.scanAgain = false;
        void this.scan();
      }
    }
  }

  stop() {
    this.unwatch?.();
  }
}
