/**
 * Tasks of custom operators (defineOperator): a thread of the process host imports the task's DAG file,
 * which imports the plugin that defines the operator, and calls its run function with the stored arguments.
 */
import { callUserCode } from './user-code.js';
import type { Operator } from './types.js';

export function customOperator(name: string): Operator {
  return {
    name,
    async execute(ctx) {
      const output = await callUserCode(
        {
          kind: 'custom',
          operator: name,
          args: ctx.task.args,
          dagsFolder: ctx.dagsFolder,
          fileloc: ctx.dag.fileloc,
          dagId: ctx.dag.dagId,
          key: ctx.task.taskId,
          run: ctx.run,
          upstream: ctx.task.upstream,
        },
        ctx,
      );
      return { output: output ?? null };
    },
  };
}
