/**
 * `airtasks deploy` without --swarm: the same stack on this machine's engine with Docker Compose
 * (the v2 plugin `docker compose` when present, else v1 `docker-compose`). The stack files are
 * rewritten for compose (compose-files.ts) into .airtasks/compose/<stack>/, and secrets come from
 * the project's local secrets folder (local-secrets.ts). `undeploy` and `status` find the
 * deployment again by the compose project label.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { runDockerCli, type DockerProgram } from '../docker/cli.js';
import { composeContainers, composeProjectName, removeComposeProject } from '../docker/compose.js';
import { NotFoundError, UnavailableError } from '../core/errors.js';
import { toComposeFiles, type SourceStack } from './compose-files.js';
import {
  devOverride,
  missingSecrets,
  projectOf,
  requiredSecrets,
  stackFiles,
  undeployProject,
  type DeployOptions,
  type DeployResult,
  type StackTarget,
} from './deploy.js';
import { localSecretsDir } from './local-secrets.js';
import { airtasksServices, loadStackDocument, stackValue } from './stack-file.js';
import { dockerFor, withDocker } from './docker.js';
import { writeStackImages } from './stack-images.js';

export interface ComposeCommand {
  /** The program and the arguments before compose's own (`docker compose` or `docker-compose`). */
  file: DockerProgram;
  args: string[];
  version: string;
}

const INSTALL_HINT =
  "install Docker Compose: the v2 plugin (package docker-compose-plugin from Docker's apt repository, used as `docker compose`) " +
  'or v1 (Debian/Ubuntu: `apt-get install docker-compose`); or deploy to a swarm with `airtasks deploy --swarm`';

/** `docker compose` when the plugin is there, else `docker-compose`; exit 4 naming how to install one. */
export async function findCompose(dockerHost?: string): Promise<ComposeCommand> {
  for (const [file, args] of [
    ['docker', ['compose']],
    ['docker-compose', []],
  ] as const) {
    // Not installed, or an old docker without the plugin: try the next.
    const r = await runDockerCli(file, [...args, 'version', '--short'], { dockerHost }).catch(() => null);
    if (r && /^v?\d/.test(r.stdout.trim())) return { file, args: [...args], version: r.stdout.trim() };
  }
  throw new UnavailableError(
    'compose',
    `neither \`docker compose\` nor \`docker-compose\` is installed: ${INSTALL_HINT}`,
  );
}

function renderedDir(root: string, stack: string): string {
  return path.join(root, '.airtasks', 'compose', stack);
}

async function runCompose(
  compose: ComposeCommand,
  args: string[],
  o: { dockerHost?: string; cwd: string; onProgress?: (line: string) => void },
): Promise<void> {
  const all = [...compose.args, ...args];
  o.onProgress?.(`${compose.file} ${all.join(' ')}`);
  const r = await withDocker(o, () =>
    runDockerCli(compose.file, all, { cwd: o.cwd, dockerHost: o.dockerHost }),
  );
  for (const line of r.output.split('\n')) if (line.trim()) o.onProgress?.(line);
}

export async function deployLocal(o: DeployOptions): Promise<DeployResult> {
  const { project, stack, stackFile } = projectOf(o);
  await writeStackImages(project, stackFile);
  const files = stackFiles(stackFile, o.files);
  const sources: SourceStack[] = await Promise.all(
    files.map(async (file) => ({ file, value: stackValue(await loadStackDocument(file)) })),
  );
  const base = sources[0]!.value;
  if (o.dev)
    sources.push({
      file: path.join(project.root, '.airtasks', 'dev.override.yml'),
      value: parse(devOverride(project.root, airtasksServices(base))),
    });

  const secretsDir = localSecretsDir(project.root);
  const needed = requiredSecrets(sources.map((s) => s.value));
  const missing = needed.filter((n) => !existsSync(path.join(secretsDir, n)));
  if (missing.length > 0) throw missingSecrets(missing, true);
  const docker = dockerFor(o);
  await withDocker(o, () => docker.ping());
  const compose = await findCompose(o.dockerHost);

  const dir = renderedDir(project.root, stack);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const rendered = toComposeFiles(sources, { secretFile: (n) => path.join(secretsDir, n) });
  const written: string[] = [];
  for (const [i, value] of rendered.entries()) {
    const out = path.join(dir, `${i}-${path.basename(sources[i]!.file)}`);
    await writeFile(
      out,
      `# Written by \`airtasks deploy\` from ${sources[i]!.file} for Docker Compose; regenerated on every deploy.\n` +
        stringify(value, { lineWidth: 0, aliasDuplicateObjects: false }),
    );
    written.push(out);
  }
  await runCompose(
    compose,
    [
      '-p',
      composeProjectName(stack),
      '--project-directory',
      path.dirname(stackFile),
      ...written.flatMap((f) => ['-f', f]),
      'up',
      '-d',
      '--remove-orphans',
    ],
    { ...o, cwd: project.root },
  );
  return {
    stack,
    target: 'compose',
    files: written,
    services: Object.keys(base.services),
    secrets: needed,
  };
}

/** Whether this project's stack runs under compose here (rendered files or labelled containers). */
export async function hasLocalDeployment(o: StackTarget): Promise<boolean> {
  const { project, stack } = projectOf(o);
  if (existsSync(renderedDir(project.root, stack))) return true;
  const docker = dockerFor(o);
  return withDocker(o, async () => (await composeContainers(docker, composeProjectName(stack))).length > 0);
}

export async function undeployLocal(
  o: StackTarget & { onProgress?: (line: string) => void },
): Promise<{ stack: string; target: 'compose'; removed: string[] }> {
  const { project, stack } = projectOf(o);
  const name = composeProjectName(stack);
  const docker = dockerFor(o);
  const before = await withDocker(o, () => composeContainers(docker, name));
  const dir = renderedDir(project.root, stack);
  const files = existsSync(dir) ? (await readdir(dir)).filter((f) => f.endsWith('.yml')).sort() : [];
  if (before.length === 0 && files.length === 0)
    throw new NotFoundError(
      'stack',
      stack,
      `no stack named ${stack} is deployed here (neither compose nor swarm)`,
    );
  const removed = [...new Set(before.map((c) => `${name}_${c.Labels['com.docker.compose.service'] ?? '?'}`))];
  if (files.length > 0) {
    // Compose v1 needs the files to know the services; `down` keeps volumes (the data) as swarm does.
    const compose = await findCompose(o.dockerHost);
    await runCompose(
      compose,
      ['-p', name, ...files.flatMap((f) => ['-f', path.join(dir, f)]), 'down', '--remove-orphans'],
      { ...o, cwd: project.root },
    );
  }
  // Without the rendered files (or after a partial down), what is left goes through the engine.
  await withDocker(o, () => removeComposeProject(docker, name));
  await rm(dir, { recursive: true, force: true });
  return { stack, target: 'compose', removed: removed.sort() };
}

/**
 * `airtasks undeploy`: --swarm or --no-swarm pick the target; without either, a compose deployment
 * of this project on this engine is removed if there is one, else the swarm stack.
 */
export async function undeployAny(
  o: StackTarget & { swarm?: boolean; waitMs?: number; onProgress?: (line: string) => void },
): Promise<{ stack: string; target: 'swarm' | 'compose'; removed: string[] }> {
  const local = o.swarm === false || (o.swarm === undefined && (await hasLocalDeployment(o)));
  if (local) return undeployLocal(o);
  return { ...(await undeployProject(o)), target: 'swarm' };
}
