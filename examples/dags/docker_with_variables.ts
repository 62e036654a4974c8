/**
 * A container task that reads variables as files.
 *
 *   scripts/docker/build-base-image.sh                  # the local image (node + busybox), no registry needed
 *   airtasks variables set example_api_token 's3cret' --secret
 *   airtasks variables set example_config "$(printf 'mode=fast\nretries=3')"
 *   airtasks trigger dag example_docker_variables --wait
 *
 * Each variable becomes a file named after its key under /run/variables (or at a path of its own),
 * written to a host temp dir that is removed when the task ends; values never enter the task log,
 * the container's environment or its labels. A missing variable fails the task before any container
 * is created.
 */
import { dag } from 'airtasks';

const IMAGE = 'airtasks-test/node-base:local';

export const dockerVariables = dag('example_docker_variables', {
  description: 'Containers that read variables mounted as files.',
  tags: ['example', 'docker'],
  defaults: { retries: 0, timeout: '5m' },
});

// One file per key under /run/variables; the last stdout line is the task's output.
const readFiles = dockerVariables.docker('read_variable_files', {
  image: IMAGE,
  pullPolicy: 'never',
  networkMode: 'host',
  variables: ['example_api_token', 'example_config'],
  command: [
    'sh',
    '-c',
    'ls -l /run/variables && grep -c . /run/variables/example_config && ' +
      'echo "token has $(wc -c < /run/variables/example_api_token) bytes"',
  ],
});

// Each key at a path of its own, a non-root user, a scratch dir ($AIRTASKS_TMP_DIR) and resource limits.
dockerVariables.docker('config_at_own_path', {
  upstream: readFiles,
  image: IMAGE,
  pullPolicy: 'never',
  networkMode: 'host',
  user: '65534:65534',
  memory: '128m',
  cpus: 0.5,
  variables: { example_config: '/etc/app/app.conf' },
  env: { RUN: '{{ run_id }}' },
  command:
    'cp /etc/app/app.conf "$AIRTASKS_TMP_DIR/copy" && ' +
    "node -e \"const fs = require('fs'); const lines = fs.readFileSync(process.env.AIRTASKS_TMP_DIR + '/copy', 'utf8').split('\\n'); console.log(JSON.stringify({ run: process.env.RUN, settings: lines.length }))\"",
  output: 'last_line',
});
