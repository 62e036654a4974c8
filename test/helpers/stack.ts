/**
 * The whole stack on this machine's one-node swarm, as a user deploys it: the stack's third-party
 * images are local stand-ins (scripts/docker/build-stack-images.sh, from Debian packages), named in
 * the project's airtasks.json "images"; everything else is the generated stack. Helpers to build
 * them, to ask the proxy with curl, and to run SQL in the stack's own postgres.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import type Docker from 'dockerode';
import { ROOT } from './cli.js';
import { sleep } from './docker.js';

const run = promisify(execFile);

export type StackImageKey = 'postgres' | 'rabbitmq' | 'proxy';

/**
 * The local stand-ins of the stack's images, built (or found up to date) by the script. Outside CI, a
 * machine that cannot build them (no debootstrap, no apt) skips the suite, saying why; in CI that fails.
 */
export async function requireStackImages(ctx: Mocha.Context): Promise<Record<StackImageKey, string>> {
  try {
    const { stdout } = await run('bash', [path.join(ROOT, 'scripts/docker/build-stack-images.sh')], {
      maxBuffer: 16 * 1024 * 1024,
      timeout: 20 * 60_000,
    });
    const images = Object.fromEntries(
      stdout
        .trim()
        .split('\n')
        .map((l) => l.split('=') as [string, string]),
    ) as Record<StackImageKey, string>;
    if (!images.postgres || !images.rabbitmq || !images.proxy)
      throw new Error(`unexpected output: ${stdout}`);
    return images;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    const why = `the stack's local images could not be built (scripts/docker/build-stack-images.sh needs root, apt and debootstrap): ${e.message}\n${e.stderr ?? ''}`;
    if (process.env.CI === 'true') throw new Error(why);
    process.stderr.write(`skipping: ${why}\n`);
    ctx.skip();
  }
}

export interface CurlResult {
  code: number;
  /** Where a redirect points (empty when none). */
  location: string;
  body: string;
}

/** One request with curl (-k for the test's self-signed certificate); code 0 when nothing answered. */
export async function curl(
  url: string,
  o: { user?: string; method?: string; data?: string } = {},
): Promise<CurlResult> {
  const args = [
    '-sk',
    '--max-time',
    '10',
    '-o',
    '-',
    '-w',
    '\n%{http_code} %{redirect_url}',
    '-X',
    o.method ?? 'GET',
  ];
  if (o.user) args.push('-u', o.user);
  if (o.data !== undefined) args.push('-H', 'content-type: application/json', '--data', o.data);
  const r = await run('curl', [...args, url]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
  const text = r.stdout;
  const nl = text.lastIndexOf('\n');
  const [code = '0', location = ''] = text.slice(nl + 1).split(' ');
  return { code: Number(code) || 0, location, body: text.slice(0, Math.max(nl, 0)) };
}

/** Polls until `check` returns a value (not undefined), or fails with what `describe` says. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 120_000,
  describe?: () => Promise<string>,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end)
      throw new Error(
        `timed out (${timeoutMs / 1000}s) waiting for ${what}${describe ? `\n${await describe()}` : ''}`,
      );
    await sleep(1000);
  }
}

/** The running container of a swarm service (on this one node). */
export async function serviceContainer(d: Docker, service: string): Promise<string | undefined> {
  const list = await d.listContainers({
    filters: { label: [`com.docker.swarm.service.name=${service}`], status: ['running'] },
  });
  return list.sort((a, b) => b.Created - a.Created)[0]?.Id;
}

/** Runs a command in a container (docker exec); its stdout. */
export async function dockerExec(container: string, cmd: string[]): Promise<string> {
  const { stdout } = await run('docker', ['exec', container, ...cmd], { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** The tasks swarm made for a service (one per start: more than one means it restarted). */
export async function serviceTasks(
  d: Docker,
  service: string,
): Promise<Array<{ state: string; desired: string; error: string }>> {
  const tasks = (await d.listTasks({ filters: { service: [service] } })) as Array<{
    DesiredState?: string;
    Status?: { State?: string; Err?: string };
  }>;
  return tasks.map((t) => ({
    state: t.Status?.State ?? '?',
    desired: t.DesiredState ?? '?',
    error: t.Status?.Err ?? '',
  }));
}

/** A self-signed certificate for localhost (openssl), as PEM files' contents. */
export async function selfSignedCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=localhost',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  return { cert, key };
}
