/** The exit code that tells a script how a run ended (see EXIT_CODES_HELP). */
import { ExitCode } from '../core/errors.js';
import type { RunState } from '../core/states.js';

export function runExitCode(state: RunState): number {
  if (state === 'success') return ExitCode.OK;
  if (state === 'cancelled') return ExitCode.RUN_CANCELLED;
  if (state === 'failed') return ExitCode.RUN_FAILED;
  return ExitCode.OK;
}
