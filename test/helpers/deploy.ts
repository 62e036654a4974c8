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
import type Docker from 'dockerode';
import { runCli } from './cli.js';
import { BASE_IMAGE, ensureBaseImage } from './docker.js';
import { BROKER_URL, DATABASE_URL, freshDb, uniqueName } from './env.js';
import { installAirtasks, scaffoldTestProject, type TestProject } from './project.js';

export interface DeployTest {
  project: TestProject;
  db: Awaited<ReturnType<typeof freshDb>>;
  /** The project image's repository (built with tag e2e). */
  image: string;
  queuePrefix: string;
  /** The CLI's environment on this machine: the test's schema and queue prefix. */
  env: NodeJS.ProcessEnv;
  /** Removes the image, the schema and the project folder. */
  cleanup(): Promise<void>;
}

/** A scaffolded project (queue worker, concurrency 2) with its own schema and queue prefix. */
export async function startDeployTest(d: Docker): Promise<DeployTest> {
  await ensureBaseImage(d);
  const db = await freshDb();
  const queuePrefix = uniqueName('q');
  const project = await scaffoldTestProject(['--queues', 'worker:2', '--secret-variables', SECRET_VARIABLE]);
  const image = `airtasks-test/${project.name}`;
  return {
    project,
    db,
    image,
    queuePrefix,
    env: {
      AIRTASKS_DATABASE_URL: DATABASE_URL,
      AIRTASKS_BROKER_URL: BROKER_URL,
      AIRTASKS_DB_SCHEMA: db.schema,
      AIRTASKS_QUEUE_PREFIX: queuePrefix,
    },
    cleanup: async () => {
      await d
        .getImage(`${image}:e2e`)
        .remove({ force: true })
        .catch(() => undefined);
      await db.drop();
      await project.remove();
    },
  };
}

/** A swarm secret the deployed scheduler imports as a secret variable (init --secret-variables). */
export const SECRET_VARIABLE = 'e2e_token';
/** The stack's airtasks_secret_key in the tests: the CLI needs it to read the imported variable back. */
export const TEST_SECRET_KEY = 'a1'.repeat(32);

export const STACK_SECRETS = [
  'postgres_password',
  'rabbitmq_password',
  'airtasks_secret_key',
  SECRET_VARIABLE,
  'basic_auth_username',
  'basic_auth_password',
  'ssl_certificate',
  'ssl_certificate_key',
];

/** rabbitmq_password is the broker password the workers read from /run/secrets (*_FILE); blank proxy secrets. */
export function testSecretValue(secret: string): string {
  if (secret === 'rabbitmq_password') return 'guest';
  if (secret === 'airtasks_secret_key') return TEST_SECRET_KEY;
  if (secret === SECRET_VARIABLE) return 'token from a secret\nsecond line';
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
        web: scaledToZero,
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

/** The deployed scheduler imported the secret into a secret variable, readable with the stack's key. */
export async function expectSecretVariable(env: NodeJS.ProcessEnv, cwd: string): Promise<void> {
  const v = await runCli(
    ['variables', 'get', SECRET_VARIABLE, '--reveal', '--json'],
    { ...env, AIRTASKS_SECRET_KEY: TEST_SECRET_KEY },
    30_000,
    { cwd },
  );
  expect(v.code, v.stderr).to.equal(0);
  expect(JSON.parse(v.stdout)).to.include({
    key: SECRET_VARIABLE,
    value: testSecretValue(SECRET_VARIABLE),
    secret: true,
  });
}
