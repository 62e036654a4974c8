/**
 * Tasks of custom operators (defineOperator): a thread of the process host imports the task's DAG file,
 * which imports the plugin that defines the operator, and calls its run function with the stored arguments.
 */
import { callUserCode, taskCall } from './user-code.js';
import type { Operator } from './types.js';

export function customOperator(name: string): Operator {
  return {
    name,
    async execute(ctx) {
      const call = { ...taskCall(ctx, 'custom'), operator: name, args: ctx.task.args };
      const output = await callUserCode(call, ctx);
      return { output: output ?? null };
    },
  };
}
