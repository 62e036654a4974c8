/**
 * A worker's claims and results of one turn in one statement, and so one commit: each Postgres statement a
 * worker sends costs it a socket write and a wait, and Postgres a commit, whatever its size. The two parts
 * touch different rows (a try is claimed before it can end), each keeps its own conditions (claimCtes,
 * storeCtes), and either may be empty.
 */
import { CLAIM_PARAMS, CLAIMED_JSON, claimCtes, claimTasks, claimsOf } from './claims.js';
import type { Claim, ClaimRequest, ClaimedRow } from './claims.js';
import type { Queryable } from './db.js';
import { shapedStatement } from './params.js';
import {
  STORE_PARAMS,
  storeArgs,
  storeColumns,
  storeCtes,
  storedResultsOf,
  storeTryResults,
  type ResultToStore,
  type StoredResult,
  type StoredRow,
} from './results.js';

// One worker id for both parts: the claims' and the claimed successors' (STORE_PARAMS' may be null).
const WORKER_TURN = shapedStatement(
  'worker_turn',
  { ...CLAIM_PARAMS, ...STORE_PARAMS },
  ['cx', 'x'],
  (sql) => `WITH ${claimCtes(sql)}, ${storeCtes(sql)}
   SELECT ${CLAIMED_JSON} AS claimed, ${storeColumns(sql)}`,
);

export interface TurnAnswers {
  /** One per claim request, in order: null when the message was stale. */
  claims: Array<Claim | null>;
  /** One per result, in order. */
  results: StoredResult[];
}

/** Claims and stores results for `workerId` in one statement (or the one kind's own, when the other is empty). */
export async function runWorkerTurn(
  q: Queryable,
  workerId: string,
  channel: string,
  claims: ClaimRequest[],
  results: ResultToStore[],
): Promise<TurnAnswers> {
  if (claims.length === 0)
    return { claims: [], results: await storeTryResults(q, results, channel, workerId) };
  if (results.length === 0) return { claims: await claimTasks(q, workerId, claims), results: [] };
  const { statement, values } = WORKER_TURN({ cx: claims, ...storeArgs(results, channel, workerId) });
  const r = await q.query<StoredRow & { claimed: ClaimedRow[] }>(statement, values);
  const row = r.rows[0]!;
  return { claims: claimsOf(claims, row.claimed), results: storedResultsOf(results, row) };
}
