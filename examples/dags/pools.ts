/**
 * Pools and priority: `airtasks pools set render_licenses 2`, then
 * `airtasks trigger dag example_pools --wait`. Four renders share a pool of two licence slots with
 * every other DAG that names it; the final "4k" render needs both slots at once. With slots scarce,
 * the heaviest ready task goes first: weightRule 'downstream' adds the weight of everything a task
 * unblocks, so `prepare` (on the path to everything) outranks a lone preview.
 */
import { dag } from 'airtasks';

export const pools = dag('example_pools', {
  description: 'Renders sharing a pool of licence slots.',
  tags: ['example'],
  defaults: { pool: 'render_licenses', weightRule: 'downstream' },
});

const prepare = pools.bash('prepare', { command: 'echo "scene ready"' });
const renders = ['front', 'side', 'top'].map((view) =>
  pools.bash(`render_${view}`, { command: `sleep 1 && echo "${view} rendered"`, upstream: prepare }),
);
pools.bash('render_4k', {
  command: 'sleep 1 && echo "4k rendered with two licences"',
  poolSlots: 2,
  priorityWeight: 5,
  upstream: renders,
});
pools.bash('preview', { command: 'echo "preview"' });
