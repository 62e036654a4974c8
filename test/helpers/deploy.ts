/**
 * What the deploy e2e tests (swarm and compose) share: the project image built FROM the local base
 * image, the stack's secrets with test values, and the override that runs the airtasks services
 * on the host network against this machine's PostgreSQL and RabbitMQ (postgres, rabbitmq and proxy
 * at 0 replicas, since no image can be pulled).
 */
import { expect } from 'chai';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { runCli } from './cli.js';
import { BASE_IMAGE } from './docker.js';
import { installAirtasks } from './project.js';

export const STACK_SECRETS = [
  'postgres_password',
  'rabbitmq_password',
  'basic_auth_username',
  'basic_auth_password',
  'ssl_certificate',
  'ssl_certificate_key',
];

/** rabbitmq_password is the broker password the workers read from /run/secrets (*_FILE); blank proxy secrets. */
export function testSecretValue(secret: string): string {
  if (secret === 'rabbitmq_password') return 'guest';
  return secret.startsWith('ssl') || secret.startsWith('basic') ? '' : 'unused';
}

/** Sets the project's image, installs airtasks into it and runs `airtasks build --tag e2e`. */
export async function buildTestImage(cwd: string, image: string, timeoutMs: number): Promise<void> {
  const cfgFile = path.join(cwd, 'airtasks.json');
  const cfg = JSON.parse(await readFile(cfgFile, 'utf8'));
  await writeFile(cfgFile, JSON.stringify({ ...cfg, image }, null, 2));
  await installAirtasks(cwd);
  const b = await runCli(
    ['build', '--tag', 'e2e', '--build-arg', `BASE_IMAGE=${BASE_IMAGE}`, '--json'],
    {},
    timeoutMs,
    { cwd },
  );
  expect(b.code, b.stderr).to.equal(0);
}

/** Writes the host-network override; `secretName` maps each stack secret to a name of the test's own. */
export async function writeHostOverride(
  file: string,
  o: { schema: string; queuePrefix: string; secretName?: (secret: string) => string },
): Promise<void> {
  const airtasksEnv = {
    AIRTASKS_DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test',
    AIRTASKS_BROKER_URL: 'amqp://guest@127.0.0.1:5672',
    AIRTASKS_DB_SCHEMA: o.schema,
    AIRTASKS_QUEUE_PREFIX: o.queuePrefix,
  };
  const scaledToZero = { image: BASE_IMAGE, deploy: { replicas: 0 } };
  const secretName = o.secretName;
  await writeFile(
    file,
    stringify({
      version: '3.8',
      services: {
        postgres: scaledToZero,
        rabbitmq: scaledToZero,
        proxy: scaledToZero,
        scheduler: { networks: ['hostnet'], environment: airtasksEnv },
        'worker-worker': { networks: ['hostnet'], environment: airtasksEnv },
      },
      networks: { hostnet: { external: true, name: 'host' } },
      ...(secretName
        ? {
            secrets: Object.fromEntries(
              STACK_SECRETS.map((s) => [s, { external: true, name: secretName(s) }]),
            ),
          }
        : {}),
    }),
  );
}
