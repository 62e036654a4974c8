/**
 * Tasks of custom operators (defineOperator): the worker imports the task's DAG file, which imports the
 * plugin that defines the operator, and calls its run function with the stored arguments.
 */
import type { OperatorRunContext } from '../dag/define-operator.js';
import { render, templateContext } from '../templates/render.js';
import { callUserFunction, loadDagFunction, taskContextOf } from './dag-functions.js';
import { TaskFailure, type Operator } from './types.js';

export function customOperator(name: string): Operator {
  return {
    name,
    async execute(ctx) {
      const fn = await loadDagFunction(ctx.dag, ctx.dagsFolder, ctx.task.taskId).catch((err: Error) => {
        throw new TaskFailure(
          `no operator "${name}" is built in, and ${err.message}: define it with defineOperator() in a module the DAG file imports`,
        );
      });
      const tpl = templateContext(ctx.run);
      const runCtx: OperatorRunContext<Record<string, unknown>> = {
        ...taskContextOf(ctx),
        args: ctx.task.args,
        render: (t: string) => render(t, tpl),
      };
      const output = await callUserFunction(
        () => (fn as (c: typeof runCtx) => unknown)(runCtx),
        ctx.signal,
        ctx.log,
      );
      return { output: output === undefined ? null : output };
    },
  };
}
