/** Pools: named slot counts shared by every DAG (`airtasks pools set | list | delete`). */
import { ConflictError, NotFoundError, ValidationError } from '../core/errors.js';
import { ID_PATTERN } from '../engine/dag/validate.js';
import * as pools from '../engine/store/pools.js';
import type { ConnectionOptions } from './config.js';
import { withEngine } from './engine.js';
import { checkStorableText } from './input-checks.js';

/** Slots a pool may have: 0 (closed, tasks wait) up to a bound that keeps the count an int4. */
const MAX_SLOTS = 1_000_000;

export interface PoolItem {
  name: string;
  slots: number;
  /** Slots taken by running tasks. */
  running: number;
  /** Slots taken by queued tasks. */
  queued: number;
  /** Slots nobody holds (negative slots are shown as 0 after a pool was made smaller). */
  open: number;
  /** Task instances waiting for slots of this pool. */
  waiting: number;
  description: string;
}

function item(p: pools.PoolUsage): PoolItem {
  return {
    name: p.name,
    slots: p.slots,
    running: p.running,
    queued: p.queued,
    open: Math.max(0, p.slots - p.running - p.queued),
    waiting: p.waiting,
    description: p.description,
  };
}

function checkName(name: string) {
  if (!ID_PATTERN.test(name))
    throw new ValidationError(
      'name',
      'malformed',
      `invalid pool name "${name}": use 1-250 letters, digits, '_', '.' or '-', not starting with '.' or '-'`,
      { value: name },
    );
}

export async function setPool(
  o: ConnectionOptions & { name: string; slots: string | number; description?: string },
): Promise<PoolItem> {
  checkName(o.name);
  const slots = Number(o.slots);
  if (!Number.isInteger(slots) || slots < 0 || slots > MAX_SLOTS)
    throw new ValidationError(
      'slots',
      'out-of-range',
      `invalid slot count "${o.slots}": give an integer from 0 to ${MAX_SLOTS}`,
      { value: o.slots },
    );
  if (o.description !== undefined) checkStorableText(o.description, 'description', 'the description');
  return withEngine(o, async (e) => {
    await pools.setPool(e.db, o.name, slots, o.description, e.db.channel('events'));
    return item((await pools.getPool(e.db, o.name))!);
  });
}

export async function listPools(o: ConnectionOptions): Promise<PoolItem[]> {
  return withEngine(o, async (e) => {
    return (await pools.listPools(e.db)).map(item);
  });
}

/** Deletes a pool; refused (exit 6) while tasks hold its slots, so no running task loses its pool. */
export async function deletePool(o: ConnectionOptions & { name: string }): Promise<void> {
  return withEngine(o, async (e) => {
    const r = await e.db.tx((c) => pools.deletePool(c, o.name));
    if (r === 'missing') throw new NotFoundError('pool', o.name, `no pool "${o.name}"`);
    if (r === 'busy')
      throw new ConflictError(
        'pool',
        o.name,
        `pool "${o.name}" has queued or running tasks; delete it once they end (tasks waiting for it keep waiting until it exists again)`,
      );
  });
}
