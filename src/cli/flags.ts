/** Flags several commands share, defined once so their names, env vars and help read the same. */
import { Flags } from '@oclif/core';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'];

/** --log-level of the long-lived commands (scheduler, worker, autoscale). */
export const logLevelFlag = Flags.string({ env: 'AIRTASKS_LOG_LEVEL', default: 'info', options: LOG_LEVELS });

/** --docker-host: the engine a command talks to (DOCKER_HOST). */
export const dockerHostFlag = (summary = 'Docker engine address (a swarm manager).') =>
  Flags.string({ env: 'DOCKER_HOST', summary });

/** --local of `airtasks secrets`: the project's local secrets instead of the swarm's. */
export const localSecretsFlag = Flags.boolean({
  summary: "The project's local secrets (.airtasks/secrets/, for `airtasks deploy` without --swarm).",
});

/** --metrics-port and --metrics-host of the long-lived commands: Prometheus /metrics (docs/metrics.md). */
export const metricsFlags = {
  'metrics-port': Flags.integer({
    env: 'AIRTASKS_METRICS_PORT',
    summary: 'Serve Prometheus metrics at http://<metrics-host>:<port>/metrics (see docs/metrics.md).',
    min: 0,
    max: 65535,
  }),
  'metrics-host': Flags.string({
    env: 'AIRTASKS_METRICS_HOST',
    summary: 'Address /metrics binds (0.0.0.0 for every interface).',
    default: '127.0.0.1',
  }),
};

/** Where --metrics-port asks for /metrics; undefined without it. */
export function metricsListen(f: { 'metrics-port'?: number; 'metrics-host'?: string }) {
  return f['metrics-port'] === undefined ? undefined : { port: f['metrics-port'], host: f['metrics-host'] };
}
