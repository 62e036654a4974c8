/**
 * Runs scheduling passes one at a time: a wake during a pass asks for another right after it. Passes that
 * read many task rows are paced; a failed pass is retried after half a second.
 */
import { sleep } from '../../core/backoff.js';
import type { Logger } from '../../core/logger.js';

/** Passes that read fewer task rows follow each other at once (small runs keep their latency). */
const PACING_MIN_ROWS = 2000;

export class PassLoop {
  private running: Promise<void> | null = null;
  private again = false;
  /** Task rows the current pass has read (see loop). */
  private rowsRead = 0;

  constructor(
    /** One scheduling pass. */
    private readonly pass: () => Promise<void>,
    /** Called after a pass failed, before it is retried. */
    private readonly onFailure: () => void,
    private readonly log: Logger,
    private readonly stopping: AbortSignal,
  ) {}

  /** Starts a pass, or asks for another after the one under way. */
  wake() {
    if (this.stopping.aborted) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => (this.running = null));
  }

  /** Another pass follows this one (a run ended: a queued run may take its slot). */
  passAgain() {
    this.again = true;
  }

  countRows(n: number) {
    this.rowsRead += n;
  }

  /** Resolves when the pass under way, if any, is over. */
  async settled(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  private async loop() {
    do {
      this.again = false;
      this.rowsRead = 0;
      const t0 = performance.now();
      try {
        await this.pass();
        // A pass over a large run reads all its tasks: with results streaming in, back-to-back passes
        // would keep a core busy. Waiting as long as the pass took batches what arrives meanwhile.
        if (this.again && this.rowsRead > PACING_MIN_ROWS) await sleep(Math.min(performance.now() - t0, 250));
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'scheduling pass failed; retrying');
        this.onFailure();
        await sleep(500);
        this.again = !this.stopping.aborted;
      }
    } while (this.again && !this.stopping.aborted);
  }
}
