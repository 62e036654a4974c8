/**
 * A worker's intake: its slots (concurrency) and the deliveries from its queues. The broker hands it a few
 * more messages than it has slots (prefetch above concurrency): a slot that frees finds its next message in
 * hand instead of waiting for an ack to reach the broker and a message to come back, and the claim of that
 * message goes to Postgres with the result of the try that freed the slot (one statement, see
 * TurnStatements). A message that waits for a slot longer than holdMs goes back to the queue, so no message
 * is held behind long tasks while another worker is free, and the worker asks for no more than its slots
 * until one of them frees.
 *
 * The try is claimed with a conditional update; a stale or duplicate message is acked and ignored. A claimed
 * try runs, then any next try claimed in the same slot (see ResultStore), and the delivery is acked when the
 * slot frees.
 */
import { randomUUID } from 'node:crypto';
import { sleep } from '../../core/backoff.js';
import type { Logger } from '../../core/logger.js';
import type { Delivery } from '../broker/broker.js';
import type { Claim } from '../store/claims.js';
import type { ClaimedTry, HeldTries } from './held-tries.js';
import type { RunDags } from './run-dags.js';
import type { TryRunner } from './try-runner.js';
import type { TurnStatements } from './turn-statements.js';

export interface IntakeOptions {
  /** The worker's concurrency. */
  slots: number;
  /** How long a message may wait for a slot before it goes back to the queue. */
  holdMs: number;
}

/** A delivery taken for a slot, with its claim when that was sent ahead (see preclaim). */
interface Taken {
  d: Delivery;
  claim: Promise<Claimed> | null;
}

type Claimed = { token: string; claim: Claim | null } | { failed: Error };

interface Waiting {
  d: Delivery;
  timer: NodeJS.Timeout;
}

export class Intake {
  /** Slots at work: stop() waits for them. */
  readonly inflight = new Set<Promise<void>>();
  private free: number;
  /** Deliveries in hand that wait for a slot, oldest first. */
  private readonly waiting: Waiting[] = [];
  /** Set once subscribed: changes how many messages the broker hands this worker at once. */
  prefetchTo: ((n: number) => void) | null = null;
  /** Whether messages beyond the slots are asked for (not while every slot has been busy for holdMs). */
  private extra = true;

  constructor(
    /** Claims of messages arriving together go to Postgres together, and with results of the moment. */
    private readonly turn: TurnStatements,
    private readonly held: HeldTries,
    private readonly runDags: RunDags,
    private readonly tries: TryRunner,
    private readonly log: Logger,
    private readonly o: IntakeOptions,
  ) {
    this.free = o.slots;
  }

  /** How many messages to ask the broker for: the slots, and as many again waiting (at most 16). */
  static prefetch(slots: number): number {
    return slots + Math.min(slots, 16);
  }

  accept(d: Delivery) {
    if (this.held.draining) {
      void d.release();
      return;
    }
    if (this.free > 0) {
      this.free--;
      this.track(this.slot({ d, claim: null }));
      return;
    }
    const w: Waiting = { d, timer: setTimeout(() => this.giveBack(w), this.o.holdMs) };
    w.timer.unref();
    this.waiting.push(w);
  }

  /** Gives back the deliveries waiting for a slot (stop()). */
  releaseWaiting() {
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      void w.d.release();
    }
  }

  /**
   * Every slot is still busy: the message goes back, for any worker, and no more are asked for beyond the
   * slots until one frees (a message held here would look lost to the schedulers' requeueLost).
   */
  private giveBack(w: Waiting) {
    const i = this.waiting.indexOf(w);
    if (i < 0) return;
    this.waiting.splice(i, 1);
    if (this.extra) {
      this.extra = false;
      this.prefetchTo?.(this.o.slots);
    }
    this.log.debug({ taskId: w.d.body.taskId, waitedMs: this.o.holdMs }, 'no free slot; message given back');
    void w.d.release();
  }

  private takeWaiting(): Delivery | null {
    const w = this.waiting.shift();
    if (!w) return null;
    clearTimeout(w.timer);
    return w.d;
  }

  private track(p: Promise<void>) {
    const q = p.catch((err) => this.log.error({ err: (err as Error).message }, 'task handling failed'));
    this.inflight.add(q);
    void q.finally(() => this.inflight.delete(q));
  }

  /** A slot: its deliveries one after another, while messages wait for it. */
  private async slot(first: Taken) {
    let taken: Taken | null = first;
    try {
      while (taken) {
        taken = await this.handle(taken);
        if (!taken) {
          const d = this.takeWaiting();
          taken = d ? { d, claim: null } : null;
        }
      }
    } finally {
      this.free++;
      if (!this.extra && !this.held.draining) {
        this.extra = true;
        this.prefetchTo?.(Intake.prefetch(this.o.slots));
      }
    }
  }

  /** Sends a delivery's claim (batched with the claims and results of the moment). */
  private claim(d: Delivery): Promise<Claimed> {
    const m = d.body;
    const token = randomUUID();
    this.held.claiming.add(token);
    return this.turn.claim({ m, token, upstream: this.runDags.knownUpstream(m), outboxId: null }).then(
      (claim) => {
        if (claim) {
          this.held.hold(m, token);
          this.runDags.remember(m.runId, claim.dagHash);
        }
        this.held.claiming.delete(token);
        return { token, claim };
      },
      (err: Error) => {
        // The claim may still have committed with its answer lost: the heartbeat finds such an orphan.
        this.held.claiming.delete(token);
        return { failed: err };
      },
    );
  }

  /** Claims and runs one delivery; returns the next one when its claim was sent ahead (see preclaim). */
  private async handle({ d, claim }: Taken): Promise<Taken | null> {
    const m = d.body;
    const ids = { runId: m.runId, taskId: m.taskId, try: m.tryNumber };
    if (this.held.draining && !claim) {
      await d.release();
      return null;
    }
    const c = await (claim ?? this.claim(d));
    if ('failed' in c) {
      // The database is unreachable: give the message back a little later (an immediate requeue would spin).
      this.log.warn({ ...ids, err: c.failed.message }, 'claim failed; message released');
      await sleep(1000);
      await d.release();
      return null;
    }
    if (!c.claim) {
      this.log.debug({ ...ids, redelivered: d.redelivered }, 'stale or duplicate message ignored');
      await d.ack();
      return null;
    }
    // The delivery stands for one of this worker's slots: a downstream task this worker claims itself
    // (a "next" try, see ResultStore) runs in the same slot, and the delivery is acked when the slot frees.
    let acked = false;
    const settle = async () => {
      if (acked) return;
      acked = true;
      await d.ack();
    };
    // When a try of this slot ends with no next try of its own, the claim of the message waiting next is
    // sent with its result.
    let ahead: Taken | null = null;
    const preclaim = () => {
      if (ahead || this.held.draining) return;
      const w = this.takeWaiting();
      if (w) ahead = { d: w, claim: this.claim(w) };
    };
    let next: ClaimedTry | null = { m, token: c.token, claim: c.claim };
    try {
      while (next) next = await this.tries.run(next, settle, ahead ? undefined : preclaim);
      await settle();
    } catch (err) {
      // A try claimed ahead is this worker's to run whatever became of this one.
      if (!ahead) throw err;
      this.log.error({ ...ids, err: (err as Error).message }, 'task handling failed');
    }
    return ahead;
  }
}
