/**
 * Run parameters: `airtasks trigger dag example_conf --conf '{"message": 7}' --wait`.
 * The bash task prints its run's conf (the original multi-trigger target); a node task reads the
 * conf and the bash task's output, typed.
 */
import { dag } from 'airtasks';

interface Conf {
  message?: string | number;
}

export const confExample = dag<Conf>('example_conf', {
  description: "Prints its run's conf.",
  tags: ['example'],
  defaults: { retries: 1, retryDelay: '2s' },
});

const hello = confExample.bash('print_conf', {
  command: 'echo "Hello from message #{{ conf.message }}" && echo "conf as JSON: $AIRTASKS_CONF"',
});

confExample.node('summarise', {
  upstream: hello,
  run: (ctx) => {
    const line = ctx.output(hello); // typed: string, the last line bash printed
    ctx.log(`message was ${String(ctx.conf.message)}; bash said: ${line}`);
    return { message: ctx.conf.message ?? null, chars: line.length };
  },
});
