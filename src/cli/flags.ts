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
