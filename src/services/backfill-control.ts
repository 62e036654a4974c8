/** Listing backfills and cancelling one. */
import { ConflictError, NotFoundError, ValidationError } from '../core/errors.js';
import type { RunState } from '../core/states.js';
import * as bf from '../engine/store/backfills.js';
import type { ConnectionOptions } from './config.js';
import { withEngine } from './engine.js';

export interface BackfillInfo {
  backfillId: number;
  dagId: string;
  from: string;
  to: string;
  reprocess: bf.Reprocess;
  maxActiveRuns: number;
  /** running until none of its runs is queued or running, then done; or cancelled. */
  state: bf.BackfillState;
  createdAt: string;
  endedAt: string | null;
  /** Its runs by state. */
  runs: Partial<Record<RunState, number>>;
}

function info(b: bf.BackfillRow, runs: Partial<Record<RunState, number>> = {}): BackfillInfo {
  return {
    backfillId: b.backfill_id,
    dagId: b.dag_id,
    from: b.from_date.toISOString(),
    to: b.to_date.toISOString(),
    reprocess: b.reprocess,
    maxActiveRuns: b.max_active_runs,
    state: b.state,
    createdAt: b.created_at.toISOString(),
    endedAt: b.ended_at?.toISOString() ?? null,
    runs,
  };
}

/** The most recent backfills (of one DAG, or all), newest first. */
export async function listBackfills(
  o: ConnectionOptions & { dagId?: string; limit?: number },
): Promise<BackfillInfo[]> {
  return withEngine(o, async (e) => {
    await bf.settleBackfills(e.db, o.dagId);
    const rows = await bf.listBackfills(e.db, { dagId: o.dagId, limit: o.limit });
    const counts = await bf.backfillRunCounts(
      e.db,
      rows.map((r) => r.backfill_id),
    );
    return rows.map((r) => info(r, counts.get(r.backfill_id)));
  });
}

export interface BackfillCancelResult extends BackfillInfo {
  /** True when it had been cancelled before: nothing changed. */
  alreadyCancelled: boolean;
  /** Its queued runs, now cancelled; its running runs go on (`runs cancel` stops one). */
  cancelledRuns: string[];
}

export const BACKFILL_CANCEL_REASON = 'cancelled: its backfill was cancelled (airtasks backfill cancel)';

export function parseBackfillId(text: string): number {
  const id = Number(text);
  if (!/^\d{1,9}$/.test(text.trim()) || !Number.isSafeInteger(id) || id < 1)
    throw new ValidationError('backfillId', 'malformed', `invalid backfill id "${text}": a whole number`, {
      value: text,
    });
  return id;
}

/**
 * Cancels a running backfill: its queued runs are cancelled and none of its runs starts any more; runs
 * already running go on. Cancelling a cancelled backfill changes nothing; one that is done is a conflict.
 */
export async function cancelBackfill(
  o: ConnectionOptions & { backfillId: number },
): Promise<BackfillCancelResult> {
  return withEngine(o, async (e) => {
    const unknown = () =>
      new NotFoundError(
        'backfill',
        String(o.backfillId),
        `unknown backfill ${o.backfillId} (airtasks backfill list shows them)`,
      );
    const before = await bf.getBackfill(e.db, o.backfillId);
    if (!before) throw unknown();
    await bf.settleBackfills(e.db, before.dag_id);
    const cancelled = await e.db.tx((c) =>
      bf.cancelBackfill(c, o.backfillId, {
        reason: BACKFILL_CANCEL_REASON,
        eventsChannel: e.db.channel('events'),
      }),
    );
    const after = (await bf.getBackfill(e.db, o.backfillId)) ?? before;
    const counts = (await bf.backfillRunCounts(e.db, [o.backfillId])).get(o.backfillId);
    if (cancelled) return { ...info(after, counts), alreadyCancelled: false, cancelledRuns: cancelled };
    if (after.state === 'cancelled')
      return { ...info(after, counts), alreadyCancelled: true, cancelledRuns: [] };
    throw new ConflictError(
      'backfill',
      String(o.backfillId),
      `backfill ${o.backfillId} is already done (every run ended); only a running backfill can be cancelled`,
    );
  });
}
