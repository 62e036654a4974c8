/**
 * Runs a TypeScript function from the DAG file, in a thread of the process host (never in the worker);
 * its return value, as JSON, is the output.
 */
import { callUserCode, taskCall } from './user-code.js';
import type { Operator, OperatorContext, OperatorResult } from './types.js';

export const nodeOperator: Operator = {
  name: 'node',
  async execute(ctx: OperatorContext): Promise<OperatorResult> {
    const output = await callUserCode(taskCall(ctx, 'task'), ctx);
    return { output: output ?? null };
  },
};
