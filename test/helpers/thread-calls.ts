/**
 * A DAG file for tests of the process host's threads, and its calls as data: `short` returns its run id,
 * logs a line and reads the variable `greeting`; `gate` waits for the file its conf's `gate` names; `spin`
 * never yields. Each call leaves a file named for its run in `conf.dir`: a call that ran twice fails.
 */
import type { UserCall } from '../../src/engine/operators/user-code.js';

export const THREAD_DAG_SOURCE = `
import * as fs from 'node:fs';
import * as path from 'node:path';
export const d = dag('threads');
const mark = (ctx) => {
  const f = path.join(ctx.conf.dir, ctx.runId);
  if (fs.existsSync(f)) throw new Error('ran twice: ' + ctx.runId);
  fs.writeFileSync(f, '');
};
d.node('short', { run: async (ctx) => {
  mark(ctx);
  ctx.log('line of ' + ctx.runId);
  const v = await ctx.variable('greeting');
  return v === undefined ? ctx.runId : { run: ctx.runId, v };
} });
d.node('gate', { run: async (ctx) => {
  mark(ctx);
  while (!fs.existsSync(path.join(ctx.conf.dir, ctx.conf.gate))) await new Promise((r) => setTimeout(r, 20));
  return ctx.runId;
} });
d.node('spin', { run: (ctx) => { mark(ctx); for (;;) {} } });
`;

export type ThreadDagTask = 'short' | 'gate' | 'spin';

/** The call of task `key` of the DAG file at `fileloc` in `folder`, for run `runId`. */
export function threadCall(
  folder: string,
  fileloc: string,
  key: ThreadDagTask,
  runId: string,
  gate?: string,
): UserCall {
  return {
    kind: 'task',
    dagsFolder: folder,
    fileloc,
    dagId: 'threads',
    key,
    run: {
      dagId: 'threads',
      runId,
      taskId: key,
      tryNumber: 1,
      logicalDate: new Date().toISOString(),
      conf: { dir: folder, gate },
      outputs: [],
    },
    upstream: [],
    env: { AIRTASKS_RUN_ID: runId },
    gpuIds: null,
  };
}
