/**
 * A scheduled DAG: every weekday at 06:00 Berlin time, for the previous interval (Airflow's data
 * intervals: the run for Monday 06:00 - Tuesday 06:00 has logical date Monday 06:00 and starts Tuesday
 * 06:00). Catchup is off, so a scheduler that was down creates only the most recent missed run.
 *
 *   airtasks dags show example_scheduled        # schedule, next run
 *   airtasks dags pause example_scheduled       # no more scheduled runs; queued runs wait
 *   airtasks dags unpause example_scheduled
 */
import { dag } from 'airtasks';

export const scheduled = dag('example_scheduled', {
  description: 'Weekday report at 06:00 Europe/Berlin; at most one run and two tasks at a time.',
  tags: ['example'],
  schedule: '0 6 * * 1-5',
  timezone: 'Europe/Berlin',
  startDate: '2024-01-01', // midnight in the DAG's time zone
  catchup: false,
  maxActiveRuns: 1,
  maxActiveTasks: 2,
});

// {{ ds }} / {{ logical_date }} are the start of the interval this run covers.
const extract = ['orders', 'refunds', 'stock'].map((table) =>
  scheduled.bash(`extract_${table}`, {
    command: `echo "extracting ${table} for {{ ds }} (interval from {{ logical_date }})"; echo ${table}`,
  }),
);

scheduled.bash('report', {
  upstream: extract,
  command:
    'echo "report for {{ ds }}: {{ outputs.extract_orders }}, {{ outputs.extract_refunds }}, {{ outputs.extract_stock }}"',
});
