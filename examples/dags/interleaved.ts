/**
 * The original Air-Tasks "standard" pattern: 17 bash tasks, width 5, manual trigger.
 *   begin_task -> print_date_0..4
 *   print_hello_i   after print_date_{i-1} and print_date_i (print_hello_0 after print_date_0 only)
 *   print_hello_i   -> bash_print_i and bash_print_{i+1} (print_hello_4 -> bash_print_4 only)
 *   bash_print_*    -> end_task
 */
import { dag } from 'airtasks';

const WIDTH = 5;
const range = (n: number) => [...Array(n).keys()];

export const interleaved = dag('example_interleaved', {
  description: 'Interleaved fan-out/fan-in of bash tasks (the original standard pattern).',
  tags: ['example'],
  defaults: { retries: 1, retryDelay: '2s', retryExponentialBackoff: true },
});

const begin = interleaved.bash('begin_task', { command: 'echo "run {{ run_id }} begins"' });
const dates = range(WIDTH).map((i) =>
  interleaved.bash(`print_date_${i}`, { command: 'date', upstream: begin }),
);
const hellos = range(WIDTH).map((i) =>
  interleaved.bash(`print_hello_${i}`, {
    command: `echo "hello ${i} after {{ outputs.print_date_${i} }}"`,
    upstream: i === 0 ? [dates[0]!] : [dates[i - 1]!, dates[i]!],
  }),
);
const prints = range(WIDTH).map((i) =>
  interleaved.bash(`bash_print_${i}`, {
    command: `echo "bash print ${i}"`,
    upstream: i === 0 ? [hellos[0]!] : [hellos[i - 1]!, hellos[i]!],
  }),
);
interleaved.bash('end_task', { command: 'echo done', upstream: prints });
