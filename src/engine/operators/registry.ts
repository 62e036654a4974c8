import { bashOperator } from './bash.js';
import { branchOperator } from './branch.js';
import { dockerOperator } from './docker.js';
import { nodeOperator } from './node.js';
import { multiTriggerOperator, triggerDagOperator } from './trigger-dag.js';
import { customOperator } from './custom.js';
import type { Operator } from './types.js';

const operators = new Map<string, Operator>(
  [bashOperator, nodeOperator, branchOperator, dockerOperator, triggerDagOperator, multiTriggerOperator].map(
    (o) => [o.name, o],
  ),
);

export function getOperator(name: string): Operator | undefined {
  return operators.get(name);
}

/** Makes a new kind of task available to this worker process. */
export function registerOperator(op: Operator) {
  operators.set(op.name, op);
}

/** The built-in or registered operator, else a custom operator (defineOperator) from the task's DAG file. */
export function resolveOperator(name: string): Operator {
  return operators.get(name) ?? customOperator(name);
}
