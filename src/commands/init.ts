import { Args, Flags } from '@oclif/core';
import { confirm, input } from '@inquirer/prompts';
import path from 'node:path';
import { BaseCommand } from '../cli/base-command.js';
import { commaList } from '../core/comma-list.js';
import { usageError } from '../core/errors.js';
import {
  normalizeScaffoldOptions,
  parseQueueSpecs,
  scaffoldProject,
  type ScaffoldOptions,
  type ScaffoldResult,
} from '../services/scaffold.js';

export default class Init extends BaseCommand<typeof Init> {
  static override summary = 'Create a new airtasks project (DAGs, plugins, Dockerfile, stack file).';
  static override description = `Asks for the project name, the image, the queues and their worker concurrency, the GPU example, a registry and the swarm secrets to import as variables; --yes takes flags and defaults instead (for CI: without a terminal and without --yes it stops rather than wait for answers).

Refuses a non-empty directory unless --force.`;
  static override examples = [
    '<%= config.bin %> init my-dags',
    '<%= config.bin %> init my-dags --yes --queues worker:4,gpu:1 --gpu --registry registry.example.com:5000',
  ];
  static override args = {
    dir: Args.string({ description: 'directory to create the project in', default: '.' }),
  };
  static override flags = {
    name: Flags.string({ summary: 'Project and stack name (default: the directory name).' }),
    image: Flags.string({ summary: 'Image repository, without tag (default: the project name).' }),
    queues: Flags.string({
      summary: 'Queues and their worker concurrency: name[:concurrency],... (default worker:2).',
    }),
    gpu: Flags.boolean({ summary: 'Include the GPU example DAG (adds a gpu queue).', allowNo: true }),
    registry: Flags.string({
      summary: 'Registry host the image is pushed to, e.g. registry.example.com:5000.',
    }),
    'secret-variables': Flags.string({
      summary: 'Swarm secrets the deployed scheduler imports as secret variables, comma-separated.',
    }),
    yes: Flags.boolean({ char: 'y', summary: 'Ask nothing: use the flags and the defaults.' }),
    force: Flags.boolean({
      summary: 'Write into a non-empty directory (files of the same name are replaced).',
    }),
  };

  async run(): Promise<ScaffoldResult> {
    const f = this.flags;
    const dir = path.resolve(this.args.dir);
    const defaults: ScaffoldOptions = {
      dir,
      name: f.name ?? sanitizeName(path.basename(dir)),
      image: f.image ?? '',
      queues: parseQueueSpecs(f.queues ?? 'worker:2'),
      gpuExample: f.gpu ?? false,
      ...(f.registry ? { registry: f.registry } : {}),
      force: f.force,
      secretVariables: commaList(f['secret-variables'] ?? ''),
    };
    let answers = defaults;
    if (!f.yes) {
      if (!process.stdin.isTTY)
        throw usageError(
          'airtasks init needs answers but there is no terminal to ask on: pass --yes (with --name, --image, --queues, --gpu, --registry as needed)',
        );
      answers = await ask(defaults);
    }
    normalizeScaffoldOptions(answers); // refuse bad answers before writing anything
    const r = await scaffoldProject(answers);
    this.log(`created ${r.config.stackName} in ${r.dir}:`);
    for (const file of r.files) this.log(`  ${file}`);
    this.log(
      `next: cd ${path.relative(process.cwd(), r.dir) || '.'} && npm install && npx airtasks dags validate`,
    );
    return r;
  }
}

/** The prompts write to stderr so stdout stays the result (and one JSON document under --json). */
async function ask(d: ScaffoldOptions): Promise<ScaffoldOptions> {
  const ctx = { output: process.stderr };
  const name = await input({ message: 'Project name', default: d.name, validate: validName }, ctx);
  const image = await input({ message: 'Image (repository, no tag)', default: d.image || name }, ctx);
  const queuesText = await input(
    {
      message: 'Queues (instance types) and worker concurrency',
      default: d.queues.map((q) => `${q.name}:${q.concurrency}`).join(','),
      validate: (v) => {
        try {
          return parseQueueSpecs(v).length > 0 || 'give at least one queue';
        } catch (err) {
          return (err as Error).message;
        }
      },
    },
    ctx,
  );
  const gpuExample = await confirm({ message: 'Include the GPU example DAG?', default: d.gpuExample }, ctx);
  const registry = await input(
    { message: 'Registry to push to (empty: none)', default: d.registry ?? '' },
    ctx,
  );
  const secretVariables = await input(
    {
      message: 'Swarm secrets to import as variables, comma-separated (empty: none)',
      default: (d.secretVariables ?? []).join(','),
    },
    ctx,
  );
  return {
    ...d,
    name,
    image,
    queues: parseQueueSpecs(queuesText),
    gpuExample,
    ...(registry.trim() ? { registry: registry.trim() } : {}),
    secretVariables: commaList(secretVariables),
  };
}

function validName(v: string): true | string {
  return /^[a-z0-9][a-z0-9_-]{0,62}$/.test(v.trim()) || 'lower-case letters, digits, "-" and "_"';
}

function sanitizeName(base: string): string {
  const s = base
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[-_]+/, '');
  return s || 'airtasks-project';
}
