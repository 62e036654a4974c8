/**
 * The claims and results of a worker's slots, batched together (see Batcher): claims of new deliveries and
 * results of ended tries that are waiting at the same moment go to Postgres as one statement
 * (runWorkerTurn), not one of each.
 */
import type { Claim, ClaimRequest } from '../store/claims.js';
import type { Db } from '../store/db.js';
import type { ResultToStore, StoredResult } from '../store/results.js';
import { runWorkerTurn } from '../store/worker-turn.js';
import { Batcher } from './batcher.js';

type TurnItem = { claim: ClaimRequest } | { result: ResultToStore };
type TurnOut = { claim: Claim | null } | { result: StoredResult };

export class TurnStatements {
  private readonly batcher: Batcher<TurnItem, TurnOut>;

  constructor(db: Db, workerId: string) {
    const channel = db.channel('events');
    this.batcher = new Batcher(async (items) => {
      const claims: ClaimRequest[] = [];
      const results: ResultToStore[] = [];
      for (const i of items) {
        if ('claim' in i) claims.push(i.claim);
        else results.push(i.result);
      }
      const a = await runWorkerTurn(db, workerId, channel, claims, results);
      let c = 0;
      let r = 0;
      return items.map((i) =>
        'claim' in i ? { claim: a.claims[c++] ?? null } : { result: a.results[r++]! },
      );
    });
  }

  /** Claims a try; null when its message is stale. */
  async claim(req: ClaimRequest): Promise<Claim | null> {
    return ((await this.batcher.add({ claim: req })) as { claim: Claim | null }).claim;
  }

  /** Stores a try's result, fenced by its claim token. */
  async store(result: ResultToStore): Promise<StoredResult> {
    return ((await this.batcher.add({ result })) as { result: StoredResult }).result;
  }
}
