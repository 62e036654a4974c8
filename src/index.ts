/** What DAG files import: `import { dag } from 'airtasks'`. Kept free of database and broker code. */
export { dag, Dag, TaskRef, isDag } from './engine/dag/builder.js';
export { DEFAULT_QUEUE } from './engine/dag/serialize.js';
export type {
  BashOptions,
  BranchOptions,
  Callback,
  DagOptions,
  DockerOptions,
  MultiTriggerOptions,
  NodeOptions,
  TaskDefaults,
  TaskOptions,
  TriggerDagOptions,
  TriggerItems,
} from './engine/dag/options.js';
export type { BranchChoice } from './engine/dag/branch.js';
export type { CallbackContext, TaskContext } from './engine/dag/context.js';
export { defineOperator } from './engine/dag/define-operator.js';
export type {
  OperatorDefinition,
  OperatorFactory,
  OperatorRunContext,
  OperatorTaskOptions,
} from './engine/dag/define-operator.js';
export type { JsonSchema, ParamsSpec } from './engine/dag/params.js';
export type { Duration } from './core/duration.js';
export type { SerializedDag, SerializedTask, TriggerRule } from './core/dag-model.js';
export { TRIGGER_RULES } from './core/dag-model.js';
export { DagValidationError } from './engine/dag/validate.js';
export { TaskFailure } from './engine/operators/types.js';
export { projectImageRef } from './core/project-image.js';
