/**
 * How many workers a queue should have, as a pure function of what was read and what was decided
 * before. Scale up at once; scale down only after the backlog stayed low for the whole cooldown; a
 * failed read keeps the current size (never zero because a read failed).
 */

export interface QueueScalePolicy {
  /** Tasks one worker runs at once (its --concurrency). */
  concurrency: number;
  min: number;
  max: number;
  /** How long the backlog must stay below the current size before scaling down. */
  cooldownMs: number;
}

/** What was read for one queue; `error` when the broker or the database could not be read. */
export type QueueReading =
  | {
      ok: true;
      /** Messages waiting in the broker for a consumer. */
      ready: number;
      /** Messages delivered and not yet acknowledged; null when the broker cannot tell (RabbitMQ). */
      unacked: number | null;
      /** Task instances of this queue in state running (Postgres). */
      running: number;
    }
  | { ok: false; error: string };

/** What the autoscaler remembers between passes for one queue. */
export interface QueueScaleMemory {
  /** Since when (ms) the wanted size has been below the current one; null when it is not. */
  lowSince: number | null;
  /** The largest size wanted during that low period: what a scale-down goes to. */
  lowPeak: number | null;
}

export const FRESH_MEMORY: QueueScaleMemory = { lowSince: null, lowPeak: null };

export type ScaleAction = 'up' | 'down' | 'hold' | 'cooldown' | 'draining' | 'read-failed';

export interface ScaleDecision {
  action: ScaleAction;
  /** Workers now (the service's replicas). */
  current: number;
  /** Workers the backlog asks for (clamped to min..max); null when the read failed. */
  wanted: number | null;
  /** Workers to have after this pass (equals current unless action is up or down). */
  target: number;
  /** ready + max(unacked, running); null when the read failed. */
  backlog: number | null;
  /** Milliseconds of cooldown left before a scale-down (action cooldown only). */
  cooldownLeftMs: number | null;
  reason: string;
}

/** Workers the backlog asks for: ceil(backlog / concurrency), clamped to min..max. */
export function wantedWorkers(backlog: number, p: QueueScalePolicy): number {
  const raw = Math.ceil(backlog / p.concurrency);
  return Math.min(p.max, Math.max(p.min, raw));
}

/**
 * The backlog: messages waiting plus tasks held by workers. A held message (unacked) is a task a
 * worker claimed or is about to claim, i.e. (almost) the same thing as a running task instance, so
 * the larger of the two counts, never their sum (which would count each running task twice).
 */
export function backlogOf(r: { ready: number; unacked: number | null; running: number }): number {
  return r.ready + Math.max(r.unacked ?? 0, r.running);
}

export function decideScale(
  policy: QueueScalePolicy,
  current: number,
  reading: QueueReading,
  memory: QueueScaleMemory,
  now: number,
  /** Workers stopped by an earlier scale-down that still run (draining their tasks). */
  draining = 0,
): { decision: ScaleDecision; memory: QueueScaleMemory } {
  if (!reading.ok) {
    // Keep the size and forget any running cooldown: a scale-down needs a cooldown of good reads.
    return {
      decision: {
        action: 'read-failed',
        current,
        wanted: null,
        target: current,
        backlog: null,
        cooldownLeftMs: null,
        reason: `keeping ${current}: ${reading.error}`,
      },
      memory: FRESH_MEMORY,
    };
  }
  const backlog = backlogOf(reading);
  // Workers on their way out still run their tasks (counted in running), but they are not among the
  // replicas: what they hold (at most their concurrency each) needs no new worker.
  const wanted = wantedWorkers(Math.max(0, backlog - draining * policy.concurrency), policy);
  const base = { current, wanted, backlog, cooldownLeftMs: null };
  if (wanted > current)
    return {
      decision: {
        ...base,
        action: 'up',
        target: wanted,
        reason: `backlog ${backlog} needs ${wanted} worker(s) of concurrency ${policy.concurrency}`,
      },
      memory: FRESH_MEMORY,
    };
  if (wanted === current)
    return {
      decision: { ...base, action: 'hold', target: current, reason: `backlog ${backlog}: size is right` },
      memory: FRESH_MEMORY,
    };
  const lowSince = memory.lowSince ?? now;
  const lowPeak = Math.max(memory.lowPeak ?? wanted, wanted);
  const left = lowSince + policy.cooldownMs - now;
  if (left > 0)
    return {
      decision: {
        ...base,
        action: 'cooldown',
        target: current,
        cooldownLeftMs: left,
        reason: `backlog ${backlog} needs ${wanted}; scaling down after ${Math.ceil(left / 1000)}s more of low backlog`,
      },
      memory: { lowSince, lowPeak },
    };
  if (draining > 0)
    // One scale-down at a time: the next waits until the workers stopped by the last one have ended,
    // so it is decided on what the remaining replicas hold.
    return {
      decision: {
        ...base,
        action: 'draining',
        target: current,
        reason: `backlog ${backlog} needs ${wanted}; waiting for ${draining} stopped worker(s) to finish their tasks`,
      },
      memory: { lowSince, lowPeak },
    };
  // Down to the most the backlog asked for during the cooldown, so a short dip does not undershoot.
  const target = Math.min(current, lowPeak);
  return {
    decision: {
      ...base,
      action: target < current ? 'down' : 'hold',
      target,
      reason: `backlog stayed at or below ${target} worker(s) for the cooldown (${policy.cooldownMs / 1000}s)`,
    },
    memory: FRESH_MEMORY,
  };
}

/** Machines for a worker count: ceil(workers / workersPerNode). */
export function nodesFor(workers: number, workersPerNode: number): number {
  return Math.ceil(workers / workersPerNode);
}
