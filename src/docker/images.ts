/** Images: reference normalisation, the pull policy, and pulls that report progress and fail clearly. */
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { RegistryAuth } from './auth.js';
import { engineEvents, engineMessage, eventError, statusCode } from './engine.js';

/** missing: pull only when the image is not on the engine; always: pull every time; never: only use a local image. */
export type PullPolicy = 'missing' | 'always' | 'never';
export const PULL_POLICIES: readonly PullPolicy[] = ['missing', 'always', 'never'];

/** Adds `:latest` to an untagged reference; a digest reference (`name@sha256:...`) stays as it is. */
export function normalizeImage(image: string): string {
  const ref = image.trim();
  if (ref === '') throw new Error('the image name is empty');
  if (ref.includes('@')) return ref;
  const lastSlash = ref.lastIndexOf('/');
  return ref.slice(lastSlash + 1).includes(':') ? ref : `${ref}:latest`;
}

/** Splits a normalised reference into the engine's fromImage/tag pair. */
export function splitReference(image: string): { repository: string; tag: string | undefined } {
  const at = image.indexOf('@');
  if (at >= 0) return { repository: image, tag: undefined };
  const colon = image.lastIndexOf(':');
  if (colon > image.lastIndexOf('/'))
    return { repository: image.slice(0, colon), tag: image.slice(colon + 1) };
  return { repository: image, tag: 'latest' };
}

export async function imageExists(docker: Docker, image: string): Promise<boolean> {
  try {
    await docker.getImage(image).inspect();
    return true;
  } catch (err) {
    if (statusCode(err) === 404) return false;
    throw err;
  }
}

export class ImageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ImageError';
  }
}

export interface PullOptions {
  /** Credentials, or a function that finds them (called only when a pull happens). */
  auth?: RegistryAuth | (() => Promise<RegistryAuth | undefined>);
  /** One line per step worth reading (a layer's new status, the final digest), not every progress tick. */
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}

interface ProgressEvent {
  status?: string;
  id?: string;
  progress?: string;
  error?: string;
  errorDetail?: { message?: string };
}

const PROGRESS_EVERY_MS = 5000;

/** Pulls an image, reporting progress; throws ImageError with the engine's message when the pull fails. */
export async function pullImage(docker: Docker, image: string, opts: PullOptions = {}): Promise<void> {
  const { repository, tag } = splitReference(image);
  const auth = typeof opts.auth === 'function' ? await opts.auth() : opts.auth;
  let stream: Readable;
  try {
    const createOpts: Record<string, unknown> = { fromImage: repository };
    if (tag) createOpts.tag = tag;
    if (opts.signal) createOpts.abortSignal = opts.signal;
    stream = (await (auth
      ? docker.createImage(auth as Docker.AuthConfig, createOpts)
      : docker.createImage(createOpts))) as unknown as Readable;
  } catch (err) {
    throw new ImageError(`pulling ${image} failed: ${engineMessage(err)}`, { cause: err });
  }
  const lastStatus = new Map<string, string>();
  const lastReport = new Map<string, number>();
  const abort = () => stream.destroy(new Error(`pull of ${image} stopped`));
  opts.signal?.addEventListener('abort', abort, { once: true });
  try {
    for await (const ev of engineEvents<ProgressEvent>(stream)) {
      const error = eventError(ev);
      if (error) throw new ImageError(`pulling ${image} failed: ${error}`);
      if (!opts.onProgress || !ev.status) continue;
      const key = ev.id ?? '';
      const now = Date.now();
      if (lastStatus.get(key) !== ev.status) {
        lastStatus.set(key, ev.status);
        lastReport.set(key, now);
        opts.onProgress(ev.id ? `${ev.id}: ${ev.status}` : ev.status);
      } else if (ev.progress && now - (lastReport.get(key) ?? 0) >= PROGRESS_EVERY_MS) {
        lastReport.set(key, now);
        opts.onProgress(`${ev.id ? `${ev.id}: ` : ''}${ev.status} ${ev.progress.replace(/\s+/g, ' ')}`);
      }
    }
  } catch (err) {
    if (err instanceof ImageError) throw err;
    if (opts.signal?.aborted) throw new ImageError(`pull of ${image} stopped: ${String(opts.signal.reason)}`);
    throw new ImageError(`pulling ${image} failed: ${engineMessage(err)}`, { cause: err });
  } finally {
    opts.signal?.removeEventListener('abort', abort);
  }
}

export interface EnsureImageOptions extends PullOptions {
  policy?: PullPolicy;
  /** Called when a pull is about to start. */
  onPullStart?: () => void;
}

/** Makes the image available under the pull policy; returns whether it was pulled. */
export async function ensureImage(
  docker: Docker,
  image: string,
  opts: EnsureImageOptions = {},
): Promise<{ pulled: boolean }> {
  const policy = opts.policy ?? 'missing';
  if (!PULL_POLICIES.includes(policy)) {
    throw new ImageError(`unknown pull policy "${String(policy)}": use ${PULL_POLICIES.join(', ')}`);
  }
  if (policy !== 'always' && (await imageExists(docker, image))) return { pulled: false };
  if (policy === 'never') {
    throw new ImageError(
      `image ${image} is not on the Docker engine and the pull policy is "never": build or load it there first ` +
        `(docker build / docker load / docker import), or use pullPolicy "missing"`,
    );
  }
  opts.onPullStart?.();
  await pullImage(docker, image, opts);
  return { pulled: true };
}
