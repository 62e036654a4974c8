/**
 * The original's "unbounded" pattern as a mapped task: one task instance per message, in this run, and a
 * fan-in that waits for all of them (which separate runs could not do; see multi_trigger.ts for when
 * separate runs are what you want).
 *
 *   airtasks trigger dag example_mapped --wait                       # 100 items
 *   airtasks trigger dag example_mapped --conf '{"count": 5, "sleep": 0}' --wait
 *   airtasks runs show <run id> --items                              # the items, by state
 *
 * The list is the output of an upstream task; each item runs print_message with the item as data
 * ({{ item }} reaches bash as a value, never as code), with its own tries and retries; summary gets the
 * items' outputs as a list, in item order.
 */
import { dag } from 'airtasks';

interface MappedConf {
  count: number;
  sleep: number;
}

export const mapped = dag<MappedConf>('example_mapped', {
  description: 'Prints one message per item of a list made at run time, then counts them.',
  tags: ['example'],
  params: {
    count: { type: 'integer', minimum: 0, maximum: 10000, default: 100, description: 'items' },
    sleep: { type: 'number', minimum: 0, default: 1, description: 'seconds each item sleeps' },
  },
  defaults: { retries: 1, retryDelay: '2s', retryExponentialBackoff: true },
});

const messages = mapped.node('list_messages', {
  run: (ctx) => Array.from({ length: ctx.conf.count }, (_, i) => i),
});

const printed = mapped.bash('print_message', {
  // At most 50 items queued or running at once: a 10,000-item list does not flood the queue.
  map: { over: messages, maxActiveItems: 50 },
  command: 'sleep {{ conf.sleep }}; echo "Hello from message #{{ item }}"',
});

mapped.node('summary', {
  upstream: printed,
  // all_done: counts what printed even when an item failed (an empty list skips print_message).
  triggerRule: 'all_done',
  run: (ctx) => {
    const lines = ctx.output<Array<string | null>>(printed);
    const ok = lines.filter((l) => l !== null).length;
    ctx.log(`${ok} of ${lines.length} messages printed`);
    return ok;
  },
});
