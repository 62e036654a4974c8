/**
 * Image builds through the engine API: the build context is a tar stream (tar-fs) of the project
 * folder without what its .dockerignore excludes (@balena/dockerignore, the engine's own matching
 * rules), and the engine's JSON progress lines are turned into readable lines and a clear error.
 */
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import dockerignore from '@balena/dockerignore';
import type Docker from 'dockerode';
import tar from 'tar-fs';
import type { RegistryAuth } from './auth.js';
import { engineEvents, engineMessage, eventError } from './engine.js';
import { splitReference } from './images.js';

export class BuildError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BuildError';
  }
}

/** The .dockerignore patterns of a context folder (none when it has no such file). */
export function readDockerignore(contextDir: string): string[] {
  const file = path.join(contextDir, '.dockerignore');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/**
 * A predicate over context-relative paths ("dags/a.ts"): true when the path is left out. The
 * Dockerfile and .dockerignore are always sent (the engine needs them), as the docker CLI does.
 */
export function contextFilter(
  patterns: string[],
  dockerfile = 'Dockerfile',
): (rel: string, isDirectory: boolean) => boolean {
  // A CommonJS module (module.exports = factory): its default import is the factory at run time.
  const factory = dockerignore as unknown as typeof dockerignore.default;
  const ig = factory({ ignorecase: false }).add(patterns);
  // With exceptions ("!dir/keep"), an ignored folder must still be walked to find what is kept.
  const hasExceptions = patterns.some((p) => p.startsWith('!'));
  return (rel, isDirectory) => {
    if (rel === dockerfile || rel === '.dockerignore' || rel === '') return false;
    if (!ig.ignores(rel)) return false;
    return !(isDirectory && hasExceptions);
  };
}

/** A tar stream of the context folder, honouring its .dockerignore; symbolic links stay links. */
export function packContext(contextDir: string, dockerfile = 'Dockerfile'): Readable {
  const root = path.resolve(contextDir);
  const leftOut = contextFilter(readDockerignore(root), dockerfile);
  return tar.pack(root, {
    ignore: (name) => {
      const rel = path.relative(root, name).split(path.sep).join('/');
      return leftOut(rel, lstatSync(name).isDirectory());
    },
    // Reproducible layers: the same files give the same image whoever builds it.
    map: (header) => ({ ...header, uid: 0, gid: 0, uname: '', gname: '' }),
  }) as unknown as Readable;
}

export interface BuildOptions {
  tags: string[];
  dockerfile?: string;
  buildArgs?: Record<string, string>;
  labels?: Record<string, string>;
  /** A line of build output ("Step 3/9 : COPY ...", a command's output). */
  onLine?: (line: string) => void;
}

interface BuildEvent {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

/** Builds an image from a context stream; returns the image id (sha256:...). */
export async function buildImage(docker: Docker, context: Readable, o: BuildOptions): Promise<string> {
  let stream: Readable;
  try {
    stream = (await docker.buildImage(context as unknown as NodeJS.ReadableStream, {
      t: o.tags[0],
      dockerfile: o.dockerfile ?? 'Dockerfile',
      buildargs: o.buildArgs ?? {},
      labels: o.labels ?? {},
      rm: true,
      forcerm: true,
    })) as unknown as Readable;
  } catch (err) {
    throw new BuildError(`the build could not start: ${engineMessage(err)}`, { cause: err });
  }
  let imageId: string | undefined;
  const tail: string[] = [];
  for await (const ev of engineEvents<BuildEvent>(stream)) {
    const error = eventError(ev);
    if (error) {
      throw new BuildError(
        `the image build failed: ${error.trim()}${tail.length ? `\n  last output:\n    ${tail.join('\n    ')}` : ''}`,
      );
    }
    if (ev.aux?.ID) imageId = ev.aux.ID;
    const text = (ev.stream ?? ev.status ?? '').replace(/\r?\n$/, '');
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      tail.push(line);
      if (tail.length > 10) tail.shift();
      o.onLine?.(line);
    }
  }
  if (!imageId) {
    // Older engines report only "Successfully built <id>"; the tag is the sure way.
    const first = o.tags[0];
    if (!first) throw new BuildError('the build ended without an image id');
    imageId = (await docker.getImage(first).inspect()).Id;
  }
  for (const extra of o.tags.slice(1)) {
    const { repository, tag } = splitReference(extra);
    await docker.getImage(imageId).tag({ repo: repository, tag });
  }
  return imageId;
}

/** The push stream's last event carries the manifest digest the registry stored. */
type PushEvent = BuildEvent & { id?: string; aux?: { Tag?: string; Digest?: string } };

/** Pushes one tagged reference; throws BuildError with the registry's message on failure. */
export async function pushImage(
  docker: Docker,
  ref: string,
  o: { auth?: RegistryAuth; onLine?: (line: string) => void } = {},
): Promise<string | null> {
  const { repository, tag } = splitReference(ref);
  let stream: Readable;
  try {
    stream = (await docker.getImage(repository).push({
      tag,
      authconfig: o.auth ?? {},
    } as Docker.ImagePushOptions)) as unknown as Readable;
  } catch (err) {
    throw new BuildError(`pushing ${ref} failed: ${engineMessage(err)}`, { cause: err });
  }
  const seen = new Map<string, string>();
  let digest: string | null = null;
  for await (const ev of engineEvents<PushEvent>(stream)) {
    const error = eventError(ev);
    if (error) throw new BuildError(`pushing ${ref} failed: ${error}`);
    if (ev.aux?.Digest) digest = ev.aux.Digest;
    if (ev.status && seen.get(ev.id ?? '') !== ev.status) {
      seen.set(ev.id ?? '', ev.status);
      o.onLine?.(ev.id ? `${ev.id}: ${ev.status}` : ev.status);
    }
  }
  return digest;
}
