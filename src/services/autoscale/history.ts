/**
 * The autoscaler's decisions worth keeping, recorded for the dashboard: every one that scaled, failed or
 * ran the node-group hook, and a hold only when it differs from the queue's last recorded decision. The
 * record is best effort: a database failure is logged and the autoscaler goes on scaling.
 */
import type { Logger } from '../../core/logger.js';
import {
  recentDecisions,
  recordDecision,
  type DecisionRecord,
  type RecordBounds,
} from '../../engine/store/autoscaler-decisions.js';
import type { Queryable } from '../../engine/store/db.js';
import type { QueueOutcome } from './autoscaler.js';

export const HISTORY_BOUNDS: RecordBounds = { keep: 500, maxAgeMs: 7 * 24 * 3600_000 };

/** A recorded decision as the API returns it. */
export interface RecordedDecision extends Omit<DecisionRecord, 'at'> {
  id: number;
  at: string;
}

/** What a decision was taken from, in one object: the readings, the backlog and the queue's settings. */
export function decisionInputs(o: QueueOutcome, cooldownMs: number | null): Record<string, unknown> {
  return {
    ready: o.inputs?.ready ?? null,
    unacked: o.inputs?.unacked ?? null,
    running: o.inputs?.running ?? null,
    backlog: o.backlog,
    concurrency: o.concurrency,
    min: o.min,
    max: o.max,
    cooldownMs,
    cooldownLeftMs: o.cooldownLeftMs,
  };
}

/**
 * Whether a decision is kept whatever came before it (else only when it differs from the last one: a
 * failed read by its reason, so a broker down for an hour is one row per queue, not 360 pushing the
 * history out).
 */
export function alwaysKept(o: QueueOutcome): boolean {
  return (
    o.scaled ||
    o.action === 'up' ||
    o.action === 'down' ||
    o.error !== null ||
    o.nodes?.hook === 'ran' ||
    o.nodes?.hook === 'failed'
  );
}

export class DecisionHistory {
  private failing: string | null = null;

  constructor(
    private readonly db: Queryable,
    private readonly stack: string,
    private readonly log: Logger,
    private readonly bounds: RecordBounds = HISTORY_BOUNDS,
  ) {}

  /** Records a pass's outcomes; never throws. */
  async record(outcomes: QueueOutcome[], cooldowns: Map<string, number>, at: number): Promise<void> {
    for (const o of outcomes) {
      const d: DecisionRecord = {
        at: new Date(at),
        stack: this.stack,
        queue: o.queue,
        service: o.service,
        action: o.action,
        current: o.current,
        wanted: o.wanted,
        target: o.target,
        scaled: o.scaled,
        inputs: decisionInputs(o, cooldowns.get(o.queue) ?? null),
        nodes: o.nodes,
        reason: o.reason,
        error: o.error ?? o.nodes?.error ?? null,
      };
      try {
        await recordDecision(this.db, d, alwaysKept(o), this.bounds);
        this.failing = null;
      } catch (err) {
        // Once per kind of failure at warn (a database that is down fails every pass the same way).
        const message = (err as Error).message;
        const level = this.failing === message ? 'debug' : 'warn';
        this.failing = message;
        this.log[level]({ queue: o.queue, err: message }, 'could not record the autoscale decision');
      }
    }
  }
}

/** A stack's last recorded decisions, newest first. */
export async function lastDecisions(db: Queryable, stack: string, limit = 20): Promise<RecordedDecision[]> {
  return (await recentDecisions(db, stack, limit)).map((d) => ({ ...d, at: d.at.toISOString() }));
}
