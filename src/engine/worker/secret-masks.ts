/**
 * The values of secret variables, to mask in task logs; secrets this worker cannot decrypt mask nothing.
 * Read once and kept until a variable changes (a trigger NOTIFYs, migration 0007) or the notification
 * connection was lost (see Liveness).
 */
import type { Db } from '../store/db.js';
import { secretValuesForMasking } from '../variables.js';

export class SecretMasks {
  private masks: Promise<string[]> | null = null;

  constructor(private readonly db: Db) {}

  values(): Promise<string[]> {
    if (!this.masks) {
      const p = secretValuesForMasking(this.db);
      this.masks = p;
      p.catch(() => {
        if (this.masks === p) this.masks = null;
      });
    }
    return this.masks;
  }

  /** A variable changed, or changes may have been missed: read them again next time. */
  forget() {
    this.masks = null;
  }
}
