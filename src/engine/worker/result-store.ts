/**
 * Stores the results of a worker's tries, fenced by their claim tokens and batched with each other (see
 * Batcher), retrying while the database is unreachable. A success starts the downstream tasks that need no
 * scheduler judgement itself (see successors.ts), and hands its slot the one to run next (NextTries).
 */
import { randomUUID } from 'node:crypto';
import { backoffMs, sleep } from '../../core/backoff.js';
import type { SerializedDag, SerializedTask } from '../../core/dag-model.js';
import type { Logger } from '../../core/logger.js';
import { knownSecrets } from '../../core/masking.js';
import type { TaskMessage } from '../../core/states.js';
import { storableText } from '../../core/storable.js';
import type { Claim } from '../store/claims.js';
import { isConnectionError, type Db } from '../store/db.js';
import type { LogLine } from '../store/logs.js';
import { recordLateEnd, type TryResult } from '../store/results.js';
import type { ClaimedTry, HeldTries } from './held-tries.js';
import type { LogSink } from './log-sink.js';
import type { NextTries } from './next-tries.js';
import type { RunAdvance } from './run-advance.js';
import type { RunEndChecks } from './run-end-checks.js';
import { successorPlan } from './successors.js';
import type { TurnStatements } from './turn-statements.js';

/** What a try's result is stored with: its DAG, task and claim (to start its successors), its log. */
export interface StoreContext {
  dag?: SerializedDag;
  task?: SerializedTask;
  claim?: Claim;
  sink?: LogSink | null;
  /** Called as the result is sent when the slot will have no next try of its own (see Intake). */
  preclaim?: () => void;
}

export class ResultStore {
  constructor(
    private readonly db: Db,
    private readonly workerId: string,
    /** Results of tasks ending together go to Postgres together, and with claims of the moment. */
    private readonly turn: TurnStatements,
    private readonly held: HeldTries,
    private readonly next: NextTries,
    private readonly advance: RunAdvance,
    private readonly endChecks: RunEndChecks,
  ) {}

  /**
   * Stores the result, retrying while the database is unreachable; false when fenced out. The sink's last
   * lines go with it; a success also queues the downstream tasks it makes ready (storeOnce).
   *
   * Secrets are masked in the output and the error first, in `r` itself: what is stored (and so shown by
   * `runs show`, and handed to downstream tasks) is what the caller goes on with (its log line, the
   * callbacks' `{{ error }}`). A task's output is data it chose to return: one that holds a secret is
   * stored with `***` in its place, like its log.
   */
  async store(
    m: TaskMessage,
    token: string,
    r: TryResult,
    log: Logger,
    of: StoreContext = {},
  ): Promise<{ stored: boolean; next: ClaimedTry | null }> {
    const masker = of.sink ?? knownSecrets();
    r.output = masker.maskDeep(r.output);
    if (r.error !== null) r.error = masker.mask(r.error);
    const logs = of.sink ? await of.sink.drain() : [];
    for (let attempt = 0; ; attempt++) {
      try {
        const out = await this.storeOnce(m, token, r, logs, of, log);
        // Fenced out at the first attempt: the try was ended for this worker (declared lost, cancelled)
        // while it ran. Later attempts may be fenced out by their own earlier commit, whose answer was lost.
        if (!out.stored && attempt === 0) await this.recordLateEnd(m, log);
        return out;
      } catch (err) {
        if (!isConnectionError(err) && r.state === 'success') {
          // The database refused the result itself: retrying would loop for ever. Record a failure.
          log.error({ err: (err as Error).message }, 'the result could not be stored; the try fails');
          r = {
            state: 'failed',
            exitCode: r.exitCode,
            output: null,
            error: masker.mask(
              storableText(`the task's result could not be stored: ${(err as Error).message}`),
            ),
            retryInMs: null,
            countsAsFailure: true,
          };
          continue;
        }
        log.warn({ err: (err as Error).message, attempt }, 'storing the result failed; retrying');
        await sleep(backoffMs(attempt, 200));
      }
    }
  }

  /** Records when the try really ended, on its record (see recordLateEnd): overlaps become visible. */
  private async recordLateEnd(m: TaskMessage, log: Logger) {
    try {
      await recordLateEnd(this.db, this.workerId, m);
    } catch (err) {
      log.warn({ err: (err as Error).message }, "the try's real end could not be recorded");
    }
  }

  /**
   * One attempt at storing a result (batched with others, see Batcher). A success whose downstream tasks
   * need no scheduler judgement (see successors.ts) starts them itself: those waiting for it alone in the
   * result's own statement ('direct'), the others after it under the run's lock (RunAdvance). The heaviest
   * of them on a queue this worker consumes is claimed to run next in the same slot, without a broker round
   * trip; the rest are published for any worker. Everything else is left to the schedulers, told through
   * the events channel.
   */
  private async storeOnce(
    m: TaskMessage,
    token: string,
    r: TryResult,
    logs: LogLine[],
    of: StoreContext,
    log: Logger,
  ): Promise<{ stored: boolean; next: ClaimedTry | null }> {
    const plan = r.state === 'success' && of.dag && of.task ? successorPlan(of.dag, of.task) : null;
    const direct = plan?.kind === 'direct' ? plan.downstream : [];
    const mine = this.held.draining ? undefined : this.next.heaviestOfMine(direct, (t) => t);
    const nextToken = mine ? randomUUID() : null;
    if (nextToken) this.held.claiming.add(nextToken);
    // A 'downstream' plan may claim a next try after the result is stored (claimNext): not known yet.
    if (!mine && plan?.kind !== 'downstream') of.preclaim?.();
    try {
      // The schedulers hear of a result only when they must decide: a NOTIFY serialises commits in Postgres.
      const { stored, started } = await this.turn.store({
        m,
        token,
        res: r,
        notify: !plan || plan.kind === 'scheduler',
        logs,
        successors: direct.map((t) => ({ taskId: t.taskId, token: t === mine ? nextToken : null })),
      });
      // A leaf's success matters to the schedulers only when it ends the run; so does a success whose
      // successors were not all waiting any more (already run, or the run was cancelled meanwhile).
      if (stored && (plan?.kind === 'leaf' || started.length < direct.length))
        this.endChecks.mayHaveEnded(m.runId, plan?.kind !== 'leaf' || plan.only);
      if (!stored) return { stored, next: null };
      if (plan?.kind === 'direct') {
        this.next.publishInBackground(started.flatMap((s) => (s.outbox ? [s.outbox] : [])));
        const claimed = started.find((s) => s.token !== null);
        if (!claimed || !of.claim || !of.task) return { stored, next: null };
        const next: ClaimedTry = {
          m: { runId: m.runId, taskId: claimed.taskId, tryNumber: claimed.tryNumber },
          token: claimed.token!,
          claim: {
            ...of.claim,
            failedTries: claimed.failedTries,
            lostTries: claimed.lostTries,
            outputs: new Map([[of.task.taskId, claimed.upstreamOutput]]),
          },
        };
        this.held.hold(next.m, next.token);
        return { stored, next };
      }
      if (plan?.kind !== 'downstream') return { stored, next: null };
    } finally {
      if (nextToken) this.held.claiming.delete(nextToken);
    }
    const { outbox, mayEnd } = await this.advance.add({ runId: m.runId, plan });
    // Every downstream task had finished already (trigger rules such as one_success): this may be the end.
    if (mayEnd) this.endChecks.mayHaveEnded(m.runId);
    const row = this.next.heaviestOfMine(outbox, (x) => ({ queue: x.queue, priorityWeight: x.priority }));
    const next = row && !this.held.draining ? await this.next.claimNext(row, log) : 'unclaimed';
    const rest = next === 'unclaimed' ? outbox : outbox.filter((x) => x !== row);
    this.next.publishInBackground(rest);
    return { stored: true, next: next === 'unclaimed' ? null : next };
  }
}
