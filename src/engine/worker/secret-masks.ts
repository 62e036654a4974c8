/**
 * The values of secret variables, to mask in what tasks show or leave behind (logs, outputs, errors) and
 * in the worker's own log lines; secrets this worker cannot decrypt mask nothing. Read once and kept until
 * a variable changes (a trigger NOTIFYs, migration 0007) or the notification connection was lost (see
 * Liveness). Each read also becomes what this process knows to be secret (core/masking.ts).
 */
import { setKnownSecrets } from '../../core/masking.js';
import type { Db } from '../store/db.js';
import { secretValuesForMasking } from '../variables.js';

export class SecretMasks {
  private masks: Promise<string[]> | null = null;

  constructor(private readonly db: Db) {}

  values(): Promise<string[]> {
    if (!this.masks) {
      const p = secretValuesForMasking(this.db).then((values) => {
        setKnownSecrets(this, values);
        return values;
      });
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
