/**
 * Branching: `airtasks trigger dag example_branching --conf '{"rows": 5000, "notify": true}' --wait`.
 * `choose_path` decides which of its direct downstream tasks run; the others are skipped, and so is what
 * follows only them (`vacuum` after `bulk_load`). `report` joins the paths with the trigger rule
 * none_failed_min_one_success, so it runs after whichever path ran.
 */
import { dag } from 'airtasks';

interface Conf {
  rows?: number;
  notify?: boolean;
}

export const branching = dag<Conf>('example_branching', {
  description: 'Chooses a load path from the number of rows.',
  tags: ['example'],
  runTimeout: '10m', // a run still going after 10 minutes is failed and its running tasks are stopped
});

const count = branching.bash('count_rows', { command: 'echo {{ conf.rows | default(100) }}' });

const choose = branching.branch('choose_path', {
  upstream: count,
  run: (ctx) => {
    const rows = Number(ctx.output(count));
    const path = rows > 1000 ? bulk : incremental;
    ctx.log(`${rows} rows: ${path.id}`);
    return ctx.conf.notify ? [path, notify] : path; // task references (or ids), one or a list
  },
});

const incremental = branching.bash('incremental_load', {
  command: 'echo "loading {{ outputs.count_rows }} rows one by one"',
  upstream: choose,
});
const bulk = branching.bash('bulk_load', { command: 'echo "bulk-loading rows"', upstream: choose });
const vacuum = branching.bash('vacuum', { command: 'echo "vacuuming after the bulk load"', upstream: bulk });
const notify = branching.bash('notify', { command: 'echo "notifying the team"', upstream: choose });

branching.bash('report', {
  command: 'echo "loaded"',
  upstream: [incremental, vacuum],
  triggerRule: 'none_failed_min_one_success',
});
