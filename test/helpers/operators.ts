/** Helpers for tests that call an operator's execute() directly. */
import { expect } from 'chai';
import { TaskFailure } from '../../src/engine/operators/types.js';

/** The TaskFailure an operator's execute() rejects with; fails the test if it resolves or throws another error. */
export async function fails(p: Promise<unknown>): Promise<TaskFailure> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(TaskFailure);
    return err as TaskFailure;
  }
  throw new Error('expected the task to fail');
}
