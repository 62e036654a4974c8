/** The operator that runs each task: a built-in by its name, else a custom operator from the DAG file. */
import type { BuiltinOperator } from '../../core/dag-model.js';
import { bashOperator } from './bash.js';
import { branchOperator } from './branch.js';
import { dockerOperator } from './docker.js';
import { nodeOperator } from './node.js';
import { multiTriggerOperator, triggerDagOperator } from './trigger-dag.js';
import { customOperator } from './custom.js';
import type { Operator } from './types.js';

// A Record, so that a name added to BUILTIN_OPERATORS without an implementation does not compile.
const builtins: Record<BuiltinOperator, Operator> = {
  bash: bashOperator,
  node: nodeOperator,
  branch: branchOperator,
  docker: dockerOperator,
  trigger_dag: triggerDagOperator,
  multi_trigger: multiTriggerOperator,
};

const operators = new Map<string, Operator>(Object.entries(builtins));

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
