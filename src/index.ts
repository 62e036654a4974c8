/** What DAG files import: `import { dag } from 'airtasks'`. Kept free of database and broker code. */
export { dag, Dag, TaskRef, isDag, DEFAULT_QUEUE } from './engine/dag/builder.js';
export type {
  BashOptions,
  BranchOptions,
  DagOptions,
  DockerOptions,
  NodeOptions,
  TaskOptions,
} from './engine/dag/builder.js';
export type { BranchChoice } from './engine/dag/branch.js';
export type { TaskContext } from './engine/dag/context.js';
export type {
  Duration,
  SerializedDag,
  SerializedTask,
  TaskDefaults,
  TriggerRule,
} from './engine/dag/types.js';
export { TRIGGER_RULES } from './engine/dag/types.js';
export { DagValidationError } from './engine/dag/validate.js';
export { TaskFailure } from './engine/operators/types.js';
