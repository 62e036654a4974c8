import { bashOperator } from './bash.js';
import { branchOperator } from './branch.js';
import { dockerOperator } from './docker.js';
import { nodeOperator } from './node.js';
import type { Operator } from './types.js';

const operators = new Map<string, Operator>(
  [bashOperator, nodeOperator, branchOperator, dockerOperator].map((o) => [o.name, o]),
);

export function getOperator(name: string): Operator | undefined {
  return operators.get(name);
}

/** Makes a new kind of task available to this worker process. */
export function registerOperator(op: Operator) {
  operators.set(op.name, op);
}
