/**
 * The original's "unbounded" pattern: one task starts one run of another DAG per item.
 *
 *   airtasks trigger dag example_multi_trigger --wait                       # 100 runs of the target
 *   airtasks trigger dag example_multi_trigger --conf '{"count": 5, "sleep": 0}' --wait
 *
 * The items come from a function evaluated in the worker when the task runs (it may also be a plain list,
 * a generator, or an async function). Each object item is the conf of its run as it is; any other value
 * would arrive as { item: value }. Run ids are derived from the parent run, the task and the item's index,
 * so a retried try starts nothing twice; the task's output is the list of run ids.
 */
import { dag } from 'airtasks';

interface TriggerConf {
  count: number;
  sleep: number;
}

export const multiTrigger = dag<TriggerConf>('example_multi_trigger', {
  description: 'Starts one run of example_multi_trigger_target per message.',
  tags: ['example'],
  params: {
    count: { type: 'integer', minimum: 1, maximum: 10000, default: 100, description: 'runs to start' },
    sleep: { type: 'number', minimum: 0, default: 1, description: 'seconds each target run sleeps' },
  },
  defaults: { retries: 1, retryDelay: '2s', retryExponentialBackoff: true },
});

multiTrigger.multiTrigger('trigger_messages', {
  dagId: 'example_multi_trigger_target',
  items: function* (ctx) {
    for (let i = 0; i < ctx.conf.count; i++) yield { message: i, sleep: ctx.conf.sleep };
  },
});

export const target = dag<{ message: number; sleep: number }>('example_multi_trigger_target', {
  description: "Prints its run's conf; started by example_multi_trigger.",
  tags: ['example'],
  params: {
    message: { type: 'integer', description: 'the message number' },
    sleep: { type: 'number', minimum: 0, default: 1 },
  },
  defaults: { retries: 1, retryDelay: '2s', retryExponentialBackoff: true },
});

target.bash('print_message', {
  command: 'sleep {{ conf.sleep }}; echo "Hello from message #{{ conf.message }}"',
});
