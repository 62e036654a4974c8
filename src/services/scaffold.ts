/**
 * `airtasks init`: writes a new project from templates/project (and the stack from deploy/) with the
 * answers given. Templates ending in `.njk` are rendered with nunjucks (DAG files wrap their own
 * run-time `{{ }}` templates in `{% raw %}`); `_gitignore`/`_dockerignore` become dot files (npm
 * drops dot files named .gitignore from packages).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import nunjucks from 'nunjucks';
import { SECRET_NAME } from '../docker/names.js';
import { commaList } from '../core/comma-list.js';
import { ValidationError } from '../core/errors.js';
import { CONFIG_FILE } from './config.js';
import { DEFAULT_IMAGES, type StackImages } from './stack-images.js';

/** The airtasks package root (the same from src/services and dist/services). */
export const PACKAGE_ROOT = path.resolve(import.meta.dirname, '..', '..');
const TEMPLATES = path.join(PACKAGE_ROOT, 'templates', 'project');
const STACK_TEMPLATE = path.join(PACKAGE_ROOT, 'deploy', 'stack.yml.njk');
const PROXY_ENTRYPOINT = path.join(PACKAGE_ROOT, 'deploy', 'proxy', 'entrypoint.sh');

export const STACK_FILE = 'deploy/stack.yml';
const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const QUEUE = /^[A-Za-z0-9_.-]{1,100}$/;
// A Docker image repository: lower-case path components, optionally a registry host[:port] first.
const IMAGE =
  /^(?:[a-z0-9.-]+(?::[0-9]+)?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;

export interface QueueSpec {
  name: string;
  concurrency: number;
}

export interface ScaffoldOptions {
  dir: string;
  /** Project name: lower-case letters, digits, `-`, `_` (also the stack name). */
  name: string;
  /** Image repository without tag, e.g. `my-dags` or `registry.example.com/team/my-dags`. */
  image: string;
  queues: QueueSpec[];
  gpuExample: boolean;
  /** Registry host to push to (`registry.example.com:5000`); prefixed to the image when it has none. */
  registry?: string;
  /** Write into a non-empty directory. */
  force?: boolean;
  /** Swarm secrets the deployed scheduler imports as secret variables. */
  secretVariables?: string[];
}

export interface ProjectFileConfig {
  dagsFolder: string;
  queues: Record<string, { concurrency: number }>;
  image: string;
  stackName: string;
  registry?: string;
  /** The stack's third-party images (postgres, rabbitmq, proxy). */
  images: StackImages;
}

export interface ScaffoldResult {
  dir: string;
  files: string[];
  config: ProjectFileConfig;
}

export const GPU_QUEUE = 'gpu';
/** The stack's own secrets: not available as names of secret variables. */
const RESERVED_SECRETS = [
  'postgres_password',
  'rabbitmq_password',
  'airtasks_secret_key',
  'basic_auth_username',
  'basic_auth_password',
  'ssl_certificate',
  'ssl_certificate_key',
];

/** Checks and normalises the answers; throws a validation error naming what is wrong. */
export function normalizeScaffoldOptions(o: ScaffoldOptions): ScaffoldOptions & { imageRef: string } {
  const name = o.name.trim();
  if (!NAME.test(name))
    throw new ValidationError(
      'name',
      'malformed',
      `invalid project name "${o.name}": use lower-case letters, digits, "-" and "_" (it is also the stack name)`,
      { value: o.name },
    );
  const registry = o.registry?.trim().replace(/\/+$/, '') || undefined;
  let image = o.image.trim() || name;
  if (registry && !image.startsWith(`${registry}/`)) image = `${registry}/${image}`;
  if (!IMAGE.test(image))
    throw new ValidationError(
      'image',
      'malformed',
      `invalid image name "${image}": use lower-case letters, digits, ".", "_", "-" and "/", no tag`,
      { value: image },
    );
  const queues: QueueSpec[] = [];
  for (const q of o.queues) {
    if (!QUEUE.test(q.name))
      throw new ValidationError(
        'queues',
        'malformed',
        `invalid queue name "${q.name}": use letters, digits, "_", ".", "-"`,
        { value: q.name },
      );
    if (!Number.isInteger(q.concurrency) || q.concurrency < 1)
      throw new ValidationError(
        'queues',
        'out-of-range',
        `the concurrency of queue "${q.name}" must be an integer >= 1`,
        { value: q.concurrency },
      );
    if (queues.some((x) => x.name === q.name))
      throw new ValidationError('queues', 'malformed', `queue "${q.name}" is given twice`, { value: q.name });
    queues.push(q);
  }
  if (queues.length === 0)
    throw new ValidationError(
      'queues',
      'missing',
      (name) => `give at least one queue, e.g. ${name} worker:2`,
    );
  if (o.gpuExample && !queues.some((q) => q.name === GPU_QUEUE))
    queues.push({ name: GPU_QUEUE, concurrency: 1 });
  const secretVariables = [...new Set((o.secretVariables ?? []).map((v) => v.trim()).filter(Boolean))];
  for (const v of secretVariables) {
    if (!SECRET_NAME.test(v) || RESERVED_SECRETS.includes(v))
      throw new ValidationError(
        'secretVariables',
        RESERVED_SECRETS.includes(v) ? 'reserved' : 'malformed',
        `invalid secret variable "${v}": a secret name (a letter or digit, then letters, digits, "_", ".", "-"), none of ${RESERVED_SECRETS.join(', ')}`,
        { value: v },
      );
  }
  return {
    ...o,
    name,
    image,
    queues,
    secretVariables,
    ...(registry ? { registry } : {}),
    imageRef: `${image}:latest`,
  };
}

/** Parses `worker:4,gpu:1` (concurrency 1 when left out). */
export function parseQueueSpecs(text: string): QueueSpec[] {
  return commaList(text).map((s) => {
    const [name = '', c] = s.split(':');
    const concurrency = c === undefined ? 1 : Number(c);
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new ValidationError(
        'queues',
        'malformed',
        `invalid queue "${s}": write name or name:concurrency, e.g. worker:4`,
        { value: s },
      );
    return { name: name.trim(), concurrency };
  });
}

export async function scaffoldProject(input: ScaffoldOptions): Promise<ScaffoldResult> {
  const o = normalizeScaffoldOptions(input);
  const dir = path.resolve(o.dir);
  if (existsSync(dir)) {
    const entries = await readdir(dir);
    if (entries.length > 0 && !o.force)
      // What is missing is leave to write there: the `force` option.
      throw new ValidationError(
        'force',
        'missing',
        (name) =>
          `${dir} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}): ` +
          `choose an empty or new directory, or pass ${name} to write over files of the same name`,
        { value: dir },
      );
  }
  const defaultQueue = o.queues.find((q) => q.name !== GPU_QUEUE)?.name ?? o.queues[0]!.name;
  const airtasksVersion = (
    JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;
  const vars = {
    name: o.name,
    packageName: o.name.replaceAll('_', '-'),
    image: o.image,
    imageRef: o.imageRef,
    airtasksRange: `^${airtasksVersion}`,
    defaultQueue,
    gpuQueue: GPU_QUEUE,
    queues: o.queues.map((q) => ({ ...q, gpu: q.name === GPU_QUEUE })),
    secretVariables: o.secretVariables ?? [],
    images: DEFAULT_IMAGES,
  };
  const env = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: true });
  const written: string[] = [];
  const write = async (rel: string, text: string, mode?: number) => {
    const file = path.join(dir, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text, mode ? { mode } : {});
    written.push(rel);
  };

  for (const rel of await listFiles(TEMPLATES)) {
    if (rel === 'dags/gpu.ts.njk' && !o.gpuExample) continue;
    const text = await readFile(path.join(TEMPLATES, rel), 'utf8');
    const out = rel.replace(/\.njk$/, '').replace(/(^|\/)_(gitignore|dockerignore)$/, '$1.$2');
    await write(out, rel.endsWith('.njk') ? env.renderString(text, vars) : text);
  }
  await write(STACK_FILE, env.renderString(await readFile(STACK_TEMPLATE, 'utf8'), vars));
  await write('deploy/proxy/entrypoint.sh', await readFile(PROXY_ENTRYPOINT, 'utf8'), 0o755);

  const config: ProjectFileConfig = {
    dagsFolder: 'dags',
    queues: Object.fromEntries(o.queues.map((q) => [q.name, { concurrency: q.concurrency }])),
    image: o.image,
    stackName: o.name,
    ...(o.registry ? { registry: o.registry } : {}),
    images: { ...DEFAULT_IMAGES },
  };
  await write(CONFIG_FILE, JSON.stringify(config, null, 2) + '\n');
  return { dir, files: written.sort(), config };
}

async function listFiles(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(root, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(root, r)));
    else if (e.isFile()) out.push(r);
  }
  return out;
}
