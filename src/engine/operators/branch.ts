/** A node function that chooses which direct downstream tasks run; its output is the list of chosen ids. */
import { BRANCH_OPERATOR, BranchChoiceError, resolveBranchChoice } from '../dag/branch.js';
import { nodeOperator } from './node.js';
import { TaskFailure, type Operator, type OperatorContext, type OperatorResult } from './types.js';

export const branchOperator: Operator = {
  name: BRANCH_OPERATOR,
  async execute(ctx: OperatorContext): Promise<OperatorResult> {
    const r = await nodeOperator.execute(ctx);
    try {
      const chosen = resolveBranchChoice(ctx.dag, ctx.task, r.output);
      ctx.log.system(
        `branch: ${chosen.length ? `running ${chosen.join(', ')}` : 'skipping every downstream task'}`,
      );
      return { output: chosen };
    } catch (err) {
      if (err instanceof BranchChoiceError) throw new TaskFailure(err.message);
      throw err;
    }
  },
};
