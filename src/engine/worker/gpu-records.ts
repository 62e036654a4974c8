/**
 * Keeps the worker's row telling who holds which of its GPUs and who waits (migration 0012), so that
 * `airtasks why`, the dashboard and /metrics see what only this process's allocator knows. Writes one at a
 * time, the newest state last; a failed write is logged and the next change writes again.
 */
import type { Logger } from '../../core/logger.js';
import type { Db } from '../store/db.js';
import { recordWorkerGpus } from '../store/waits.js';
import type { GpuAllocator, GpuSnapshot } from './gpus.js';

export class GpuRecords {
  private latest: GpuSnapshot | null = null;
  private writing: Promise<void> | null = null;
  private off: (() => void) | null = null;

  constructor(
    private readonly db: Db,
    private readonly workerId: string,
    private readonly log: Logger,
  ) {}

  /** Records the allocator's state now and on every change; nothing for a worker without GPUs. */
  start(gpus: GpuAllocator | undefined) {
    if (!gpus || gpus.devices.length === 0) return;
    this.off = gpus.onChange((s) => this.push(s));
    this.push(gpus.snapshot());
  }

  /** Stops listening and waits for the last write. */
  async stop() {
    this.off?.();
    await this.writing;
  }

  private push(s: GpuSnapshot) {
    this.latest = s;
    this.writing ??= this.drain().finally(() => (this.writing = null));
  }

  private async drain() {
    while (this.latest) {
      const s = this.latest;
      this.latest = null;
      await recordWorkerGpus(this.db, this.workerId, s).catch((err: Error) =>
        this.log.warn({ err: err.message }, 'recording GPU holders failed'),
      );
    }
  }
}
