/** Trigger tasks' access to runs in a worker: straight to the store, as `trigger dag` does. */
import { VersionCache } from '../dag/versions.js';
import type { RunLauncher } from '../operators/types.js';
import type { Db } from '../store/db.js';
import { getDag } from '../store/dags.js';
import { createRuns, runStates } from '../store/runs.js';

export function storeRunLauncher(db: Db, versions = new VersionCache(db)): RunLauncher {
  return {
    async currentVersion(dagId) {
      const row = await getDag(db, dagId);
      if (!row || !row.is_active) return undefined;
      return { hash: row.hash, dag: await versions.get(row.hash) };
    },
    createRuns: (list) =>
      createRuns(
        db,
        list.map((r) => ({ ...r, runType: 'triggered' })),
        db.channel('events'),
      ),
    runStates: (ids) => runStates(db, ids),
  };
}
