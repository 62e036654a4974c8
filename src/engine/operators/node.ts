/** Runs a TypeScript function from the DAG file in the worker process; its return value is the output. */
import type { TaskContext } from '../dag/context.js';
import { callUserFunction, loadDagFunction, taskContextOf } from './dag-functions.js';
import type { Operator, OperatorContext, OperatorResult } from './types.js';

export const nodeOperator: Operator = {
  name: 'node',
  async execute(ctx: OperatorContext): Promise<OperatorResult> {
    const fn = (await loadDagFunction(ctx.dag, ctx.dagsFolder, ctx.task.taskId)) as (
      c: TaskContext,
    ) => unknown;
    const taskCtx = taskContextOf(ctx);
    const output = await callUserFunction(() => fn(taskCtx), ctx.signal, ctx.log);
    return { output: output === undefined ? null : output };
  },
};
