/**
 * `airtasks autoscale`: every interval, for each autoscaled queue, read its backlog and its worker
 * service's replicas, decide (engine/autoscale/decide.ts, pure) and act: scale the swarm service and
 * run the queue's node-group hook when the machines it needs change, and record the decisions worth keeping
 * (history.ts). Dry runs decide and act on nothing, and record nothing.
 */
import type Docker from 'dockerode';
import {
  decideScale,
  FRESH_MEMORY,
  nodesFor,
  type QueueReading,
  type QueueScaleMemory,
  type ScaleAction,
} from '../../engine/autoscale/decide.js';
import { sleep } from '../../core/backoff.js';
import type { Logger } from '../../core/logger.js';
import { scaleService, serviceScale } from '../../docker/swarm.js';
import type { QueueAutoscaleConfig } from './config.js';
import type { DecisionHistory } from './history.js';
import { runNodeGroupHook, type HookResult } from './node-group-hook.js';

export interface QueueOutcome {
  queue: string;
  service: string;
  action: ScaleAction;
  /** Replicas before this pass; null when the service could not be read. */
  current: number | null;
  wanted: number | null;
  /** Replicas after this pass (what a dry run would set). */
  target: number | null;
  backlog: number | null;
  /** What was read: broker ready/unacked, running task instances. */
  inputs: { ready: number; unacked: number | null; running: number } | null;
  min: number;
  max: number;
  concurrency: number;
  cooldownLeftMs: number | null;
  reason: string;
  /** Whether the service was scaled in this pass (false in a dry run). */
  scaled: boolean;
  /** The node count for the hook, when the queue has one; what happened when it ran. */
  nodes: { desired: number; hook: 'ran' | 'failed' | 'unchanged' | 'dry-run'; error: string | null } | null;
  error: string | null;
}

export interface AutoscalerOptions {
  queues: QueueAutoscaleConfig[];
  docker: Docker;
  read: (queues: string[]) => Promise<Map<string, QueueReading>>;
  logger: Logger;
  dryRun?: boolean;
  hookTimeoutMs?: number;
  now?: () => number;
  /** Where the decisions are recorded (never in a dry run); none: not recorded. */
  history?: DecisionHistory;
}

/** A service's replicas, or why they could not be read. */
export type ServiceSize = { replicas: number; stopping?: number } | { error: string };

/**
 * One queue's outcome before acting (what --dry-run prints), from what was read: pure. A service that
 * could not be read changes nothing, like a failed backlog read.
 */
export function planQueue(
  q: QueueAutoscaleConfig,
  size: ServiceSize,
  reading: QueueReading | undefined,
  memory: QueueScaleMemory,
  now: number,
): { outcome: QueueOutcome; memory: QueueScaleMemory } {
  const base = {
    queue: q.queue,
    service: q.service,
    min: q.min,
    max: q.max,
    concurrency: q.concurrency,
    inputs: reading?.ok ? { ready: reading.ready, unacked: reading.unacked, running: reading.running } : null,
    scaled: false,
    nodes: null,
    error: null,
  };
  if ('error' in size)
    return {
      outcome: {
        ...base,
        action: 'read-failed',
        current: null,
        wanted: null,
        target: null,
        backlog: null,
        cooldownLeftMs: null,
        reason: `service unreadable, nothing changed: ${size.error}`,
        error: size.error,
      },
      memory: FRESH_MEMORY,
    };
  const r = decideScale(
    q,
    size.replicas,
    reading ?? { ok: false, error: 'no reading' },
    memory,
    now,
    size.stopping ?? 0,
  );
  return { outcome: { ...base, ...r.decision }, memory: r.memory };
}

export class Autoscaler {
  private readonly memory = new Map<string, QueueScaleMemory>();
  /** The node count last handed to each queue's hook successfully. */
  private readonly nodesSent = new Map<string, number>();
  private readonly lastLogged = new Map<string, string>();
  private readonly cooldowns: Map<string, number>;

  constructor(private readonly o: AutoscalerOptions) {
    this.cooldowns = new Map(o.queues.map((q) => [q.queue, q.cooldownMs]));
  }

  /** One pass over every queue. */
  async pass(): Promise<QueueOutcome[]> {
    const now = this.o.now?.() ?? Date.now();
    const readings = await this.o.read(this.o.queues.map((q) => q.queue));
    const out: QueueOutcome[] = [];
    for (const q of this.o.queues) out.push(await this.queuePass(q, readings.get(q.queue), now));
    // After every queue has acted: a slow or failing database delays no scaling.
    if (!this.o.dryRun) await this.o.history?.record(out, this.cooldowns, now);
    return out;
  }

  private async queuePass(
    q: QueueAutoscaleConfig,
    reading: QueueReading | undefined,
    now: number,
  ): Promise<QueueOutcome> {
    let current: ServiceSize;
    try {
      const s = await serviceScale(this.o.docker, q.service);
      current =
        s.replicas === null
          ? { error: `service ${q.service} is global; make it replicated (deploy.mode) to autoscale it` }
          : { replicas: s.replicas, stopping: s.stopping };
    } catch (err) {
      current = { error: (err as Error).message };
    }
    const r = planQueue(q, current, reading, this.memory.get(q.queue) ?? FRESH_MEMORY, now);
    this.memory.set(q.queue, r.memory);
    const outcome = r.outcome;
    if (outcome.current === null || outcome.target === null) {
      this.logOutcome(outcome);
      return outcome;
    }
    const d = { target: outcome.target, action: outcome.action };
    if (!this.o.dryRun && d.target !== outcome.current) {
      try {
        await scaleService(this.o.docker, q.service, d.target);
        outcome.scaled = true;
      } catch (err) {
        outcome.error = (err as Error).message;
        this.memory.set(q.queue, FRESH_MEMORY);
      }
    }
    if (q.nodeGroupHook && d.action !== 'read-failed' && !outcome.error)
      outcome.nodes = await this.nodes(q, d.target);
    this.logOutcome(outcome);
    return outcome;
  }

  private async nodes(q: QueueAutoscaleConfig, workers: number): Promise<QueueOutcome['nodes']> {
    const desired = nodesFor(workers, q.workersPerNode);
    if (this.o.dryRun) return { desired, hook: 'dry-run', error: null };
    if (this.nodesSent.get(q.queue) === desired) return { desired, hook: 'unchanged', error: null };
    const r: HookResult = await runNodeGroupHook(q.nodeGroupHook!, {
      queue: q.queue,
      desiredNodes: desired,
      timeoutMs: this.o.hookTimeoutMs,
      env: process.env,
    });
    if (r.ok) {
      this.nodesSent.set(q.queue, desired);
      this.o.logger.info({ queue: q.queue, desiredNodes: desired, output: r.output }, 'node-group hook ran');
      return { desired, hook: 'ran', error: null };
    }
    // Not remembered as sent: the next pass tries again.
    this.o.logger.error(
      { queue: q.queue, desiredNodes: desired, error: r.error, output: r.output },
      'node-group hook failed',
    );
    return { desired, hook: 'failed', error: r.error };
  }

  /** Every decision that changes something, or whose inputs changed, at info; repeats at debug. */
  private logOutcome(o: QueueOutcome) {
    const { queue, service, action, current, wanted, target, backlog, inputs, reason, scaled, error } = o;
    const fields = { queue, service, action, current, wanted, target, backlog, ...inputs, scaled, error };
    const key = JSON.stringify([action, current, target, backlog, inputs, error]);
    const changed = this.lastLogged.get(queue) !== key;
    this.lastLogged.set(queue, key);
    if (action === 'read-failed' || error) this.o.logger.warn(fields, `autoscale ${queue}: ${reason}`);
    else if (changed || action === 'up' || action === 'down')
      this.o.logger.info(fields, `autoscale ${queue}: ${action} — ${reason}`);
    else this.o.logger.debug(fields, `autoscale ${queue}: ${action} — ${reason}`);
  }
}

/** Runs passes every intervalMs until stop(); a pass that throws is logged and the loop goes on. */
export class AutoscaleLoop {
  private readonly abort = new AbortController();
  private done: Promise<void> | null = null;
  private stopped: Promise<void> | null = null;

  constructor(
    private readonly scaler: Autoscaler,
    private readonly intervalMs: number,
    private readonly log: Logger,
    private readonly onClose: () => Promise<void>,
  ) {}

  start(): void {
    this.done ??= (async () => {
      while (!this.abort.signal.aborted) {
        try {
          await this.scaler.pass();
        } catch (err) {
          this.log.error({ err: (err as Error).message }, 'autoscale pass failed; sizes unchanged');
        }
        await sleep(this.intervalMs, this.abort.signal);
      }
    })();
  }

  /** Finishes the pass in progress (a scale request is never cut in half), then closes. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.abort.abort();
      await this.done;
      await this.onClose();
    })();
    return this.stopped;
  }
}
