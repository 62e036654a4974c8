/**
 * Custom operators from the project's plugins folder (see examples/plugins/ and README "Custom operators"):
 * a bash task writes a file a little later, a file_sensor task waits for it, a node task reads the path,
 * and a last task removes the folder whatever happened.
 */
import { dag } from 'airtasks';
import { fileSensor } from '../plugins/file_sensor.js';

export const customOperators = dag('example_custom_operators', {
  description: 'Uses the file_sensor operator of examples/plugins.',
  tags: ['example'],
});

const dir = '/tmp/airtasks-example-{{ run_id }}';

// Started together: the sensor keeps looking until the writer's file appears.
customOperators.bash('write_file', {
  command: `mkdir -p "${dir}" && sleep 1 && echo ready > "${dir}/ready.txt"`,
});
const wait = fileSensor(customOperators, 'wait_for_file', {
  path: `${dir}/ready.txt`,
  pokeInterval: 200,
  timeout: '1m',
});
const report = customOperators.node('report', {
  upstream: wait,
  run: (ctx) => `the sensor found ${ctx.output(wait)}`,
});
customOperators.bash('clean_up', { command: `rm -rf "${dir}"`, upstream: report, triggerRule: 'all_done' });
