/**
 * `airtasks build`: the project image through the Docker engine (context tar honouring
 * .dockerignore), an optional push, then the new tag written into every airtasks service of the
 * stack file. Progress is a listr2 task list on stderr.
 */
import { existsSync, lstatSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { Listr, ProcessOutput } from 'listr2';
import { resolveRegistryAuth } from '../docker/auth.js';
import { buildImage, packContext, pushImage } from '../docker/build.js';
import { usageError, ValidationError } from '../core/errors.js';
import { findProject, requireProject, type Project } from './config.js';
import { dockerFor, withDocker } from './docker.js';
import { STACK_FILE } from './scaffold.js';
import { IMAGE_ENV } from '../core/project-image.js';
import { projectStackImages, setStackImages } from './stack-images.js';
import {
  airtasksServices,
  loadStackDocument,
  saveStackDocument,
  setServiceImages,
  stackValue,
} from './stack-file.js';

export type ProgressRenderer = 'default' | 'simple' | 'silent';

export interface BuildProjectOptions {
  cwd?: string;
  /** Tag (default `latest`); the repository is airtasks.json's `image`. */
  tag?: string;
  push?: boolean;
  buildArgs?: Record<string, string>;
  dockerHost?: string;
  /** Rewrite the stack file's images (default true). */
  updateStack?: boolean;
  renderer?: ProgressRenderer;
}

export interface BuildResult {
  imageId: string;
  image: string;
  tags: string[];
  pushed: boolean;
  /** With --push: the pushed tag and `repository@sha256:...`, the manifest the registry stored. */
  pushedRefs: string[];
  stackFile: string | null;
  servicesUpdated: string[];
}

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function projectImage(project: Project): string {
  const image = project.config.image;
  if (typeof image !== 'string' || image === '')
    throw usageError(
      `${project.configFile ?? 'airtasks.json'} has no "image": add the image repository (e.g. "image": "my-dags"), or create the project with \`airtasks init\``,
    );
  return image;
}

/** The checks that make an offline build possible; each error says how to fix it. */
export function checkBuildContext(root: string): void {
  if (!existsSync(path.join(root, 'Dockerfile')))
    throw usageError(`${root} has no Dockerfile: run \`airtasks init\` there, or add one`);
  const pkg = path.join(root, 'node_modules', 'airtasks');
  if (!existsSync(pkg))
    throw usageError(
      `${pkg} is missing: the image copies node_modules (its build needs no network), so run \`npm ci --omit=dev\` first`,
    );
  if (lstatSync(pkg).isSymbolicLink()) {
    const target = realpathSync(pkg);
    if (path.relative(root, target).startsWith('..'))
      throw usageError(
        `node_modules/airtasks links to ${target}, outside the build context (npm link or a file: dependency): ` +
          'install a packed airtasks instead (`npm pack` in that checkout, then `npm install ./airtasks-<version>.tgz`)',
      );
  }
}

export async function buildProject(o: BuildProjectOptions): Promise<BuildResult> {
  const project = requireProject(
    findProject(o.cwd),
    'run `airtasks build` inside a project (`airtasks init` makes one)',
  );
  const image = projectImage(project);
  const tag = o.tag ?? 'latest';
  if (!TAG.test(tag))
    throw new ValidationError(
      'tag',
      'malformed',
      `invalid tag "${tag}": letters, digits, "_", ".", "-" (at most 128)`,
      {
        value: tag,
      },
    );
  const ref = `${image}:${tag}`;
  const images = projectStackImages(project);
  checkBuildContext(project.root);
  const docker = dockerFor(o);
  const stackFile = path.join(project.root, STACK_FILE);
  const result: BuildResult = {
    imageId: '',
    image: ref,
    tags: [ref],
    pushed: false,
    pushedRefs: [],
    stackFile: null,
    servicesUpdated: [],
  };

  const tasks = new Listr(
    [
      {
        title: `Build ${ref}`,
        task: async (_ctx, task) => {
          result.imageId = await withDocker(o, () =>
            buildImage(docker, packContext(project.root), {
              tags: [ref],
              // The image knows its own reference (the scaffold's Dockerfile makes it AIRTASKS_IMAGE),
              // so docker tasks of the project run the very tag being built.
              buildArgs: { [IMAGE_ENV]: ref, ...o.buildArgs },
              labels: {
                'io.airtasks.project': String(project.config.stackName ?? path.basename(project.root)),
              },
              onLine: (line) => (task.output = line),
            }),
          );
          task.title = `Built ${ref} (${result.imageId.replace('sha256:', '').slice(0, 12)})`;
        },
      },
      {
        title: `Push ${ref}`,
        enabled: () => !!o.push,
        task: async (_ctx, task) => {
          const auth = await resolveRegistryAuth(ref, { onWarning: (m) => (task.output = m) });
          const digest = await withDocker(o, () =>
            pushImage(docker, ref, {
              ...(auth ? { auth } : {}),
              onLine: (l) => (task.output = l),
            }),
          );
          result.pushed = true;
          result.pushedRefs = digest ? [ref, `${image}@${digest}`] : [ref];
          task.title = `Pushed ${result.pushedRefs.join(' ')}`;
        },
      },
      {
        title: `Update ${STACK_FILE}`,
        enabled: () => o.updateStack !== false && existsSync(stackFile),
        task: async (_ctx, task) => {
          const doc = await loadStackDocument(stackFile);
          const stack = stackValue(doc);
          const services = airtasksServices(stack, image);
          result.servicesUpdated = setServiceImages(doc, services, ref);
          // airtasks.json's "images" (postgres, rabbitmq, proxy), kept in step the same way.
          if (images) result.servicesUpdated.push(...setStackImages(doc, stack, images));
          await saveStackDocument(stackFile, doc);
          result.stackFile = stackFile;
          task.title = `${STACK_FILE}: ${services.join(', ')} use ${ref}`;
        },
      },
    ],
    {
      renderer: o.renderer ?? 'default',
      fallbackRenderer: o.renderer === 'silent' ? 'silent' : 'simple',
      rendererOptions: { collapseSubtasks: false, persistentOutput: false } as never,
      registerSignalListeners: false,
      exitOnError: true,
      processOutput: new ProcessOutput(process.stderr, process.stderr),
    } as never,
  );
  await tasks.run();
  return result;
}
