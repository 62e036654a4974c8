/**
 * Callbacks: task callbacks (onRetry, onSuccess, onFailure; per task or as DAG defaults) run in the worker
 * right after a try's result is stored; run callbacks (onRunSuccess, onRunFailure) are queued by the
 * scheduler for a worker once the run has ended. Each is a templated bash command or a function.
 * A callback that fails is logged and changes nothing.
 *
 *   airtasks trigger dag example_callbacks --wait
 *   airtasks tasks logs <run_id> flaky          # the try logs, with [onRetry] and [onSuccess] lines
 *   airtasks tasks logs <run_id> @onRunSuccess   # the run callback's log
 */
import { dag } from 'airtasks';

export const callbacks = dag('example_callbacks', {
  description: 'A task that fails once, with task and run callbacks.',
  tags: ['example'],
  defaults: {
    onFailure: 'echo "task {{ task_id }} failed on try {{ try_number }}: {{ error }}" >&2',
  },
  onRunSuccess: 'echo "run {{ run_id }} of {{ dag_id }} ended {{ state }}"',
  onRunFailure: (ctx) => ctx.log(`run ${ctx.runId} failed: ${ctx.error}`),
});

callbacks.bash('flaky', {
  command: 'echo "try {{ try_number }}"; [ {{ try_number }} -gt 1 ]',
  retries: 1,
  retryDelay: '100ms',
  onRetry: 'echo "retrying {{ task_id }} after: {{ error }}"',
  onSuccess: (ctx) => ctx.log(`${ctx.taskId} succeeded on try ${ctx.tryNumber}`),
});
