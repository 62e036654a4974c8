/**
 * The tries a worker holds, by claim token: those it runs (each with the abort controller that stops it)
 * and its claims still in flight; and whether it is draining. Its intake, try runner, result store and
 * heartbeat share them.
 */
import type { TaskMessage } from '../../core/states.js';
import type { Claim } from '../store/claims.js';

/** A try this worker holds a claim on. */
export interface ClaimedTry {
  m: TaskMessage;
  token: string;
  claim: Claim;
}

export interface Running {
  message: TaskMessage;
  token: string;
  abort: AbortController;
}

export class HeldTries {
  readonly running = new Map<string, Running>();
  /** Tokens of claims in flight: known to the heartbeat, so it never takes them for orphans. */
  readonly claiming = new Set<string>();
  /** stop() has begun: no new try is taken, and a try stopped now is lost with the worker, not failed. */
  draining = false;
  /** Aborted when stop() runs out of grace: stops callbacks still running. */
  readonly shutdown = new AbortController();

  /** A claimed try, running until released; its abort controller stops it. */
  hold(message: TaskMessage, token: string) {
    this.running.set(token, { message, token, abort: new AbortController() });
  }
}
