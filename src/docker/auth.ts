/**
 * Credentials for pulling from a registry, resolved the way the docker CLI does:
 * ~/.docker/config.json (or $DOCKER_CONFIG/config.json) `credHelpers` for the registry, then its
 * `auths` entry, then `credsStore`; a helper is the program `docker-credential-<name> get`, given the
 * server URL on stdin. A task may instead name a variable holding the credentials (see parseAuthValue).
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** What the engine takes in X-Registry-Auth (dockerode's `authconfig`). */
export interface RegistryAuth {
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
  serveraddress: string;
}

interface DockerConfigAuth {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

export interface DockerConfigFile {
  auths?: Record<string, DockerConfigAuth>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

export const DOCKER_HUB = 'docker.io';
/** The key the docker CLI stores Docker Hub credentials under. */
const DOCKER_HUB_SERVER = 'https://index.docker.io/v1/';
const HUB_ALIASES = new Set([
  'docker.io',
  'index.docker.io',
  'registry-1.docker.io',
  'registry.hub.docker.com',
]);

/** The registry host of an image reference: `localhost:5000/a/b:1` -> `localhost:5000`, `ubuntu` -> `docker.io`. */
export function registryOf(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return DOCKER_HUB;
  const first = image.slice(0, slash);
  if (first.includes('.') || first.includes(':') || first === 'localhost') {
    return HUB_ALIASES.has(first) ? DOCKER_HUB : first;
  }
  return DOCKER_HUB;
}

/** `https://reg.example:5000/v1/` -> `reg.example:5000`; Docker Hub's aliases -> `docker.io`. */
export function normalizeRegistry(key: string): string {
  const host = key
    .replace(/^[a-z]+:\/\//i, '')
    .split('/')[0]!
    .toLowerCase();
  return HUB_ALIASES.has(host) ? DOCKER_HUB : host;
}

function serverAddress(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_SERVER : registry;
}

export interface ResolveAuthOptions {
  /** Folder of config.json; default $DOCKER_CONFIG, else ~/.docker. */
  configDir?: string;
  /** Called with problems that do not stop the pull (an unreadable config, a failing helper). */
  onWarning?: (message: string) => void;
}

/** Credentials for the image's registry from the Docker config, or undefined when it has none. */
export async function resolveRegistryAuth(
  image: string,
  opts: ResolveAuthOptions = {},
): Promise<RegistryAuth | undefined> {
  const registry = registryOf(image);
  const dir = opts.configDir ?? process.env.DOCKER_CONFIG ?? path.join(os.homedir(), '.docker');
  const file = path.join(dir, 'config.json');
  let config: DockerConfigFile;
  try {
    config = JSON.parse(await readFile(file, 'utf8')) as DockerConfigFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      opts.onWarning?.(`ignoring ${file}: ${(err as Error).message}`);
    return undefined;
  }
  const helper = Object.entries(config.credHelpers ?? {}).find(
    ([k]) => normalizeRegistry(k) === registry,
  )?.[1];
  if (helper) return credentialHelperGet(helper, registry, opts.onWarning);
  const entry = Object.entries(config.auths ?? {}).find(([k]) => normalizeRegistry(k) === registry)?.[1];
  const fromEntry = entry ? fromConfigEntry(entry, registry) : undefined;
  if (fromEntry) return fromEntry;
  if (config.credsStore) return credentialHelperGet(config.credsStore, registry, opts.onWarning);
  return undefined;
}

function fromConfigEntry(e: DockerConfigAuth, registry: string): RegistryAuth | undefined {
  const serveraddress = serverAddress(registry);
  if (e.identitytoken) return { identitytoken: e.identitytoken, serveraddress };
  if (e.registrytoken) return { registrytoken: e.registrytoken, serveraddress };
  if (e.username && e.password !== undefined)
    return { username: e.username, password: e.password, serveraddress };
  if (e.auth) {
    const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i > 0) return { username: decoded.slice(0, i), password: decoded.slice(i + 1), serveraddress };
  }
  return undefined;
}

/** Runs `docker-credential-<helper> get`; undefined when the helper knows no credentials for the server. */
export async function credentialHelperGet(
  helper: string,
  registry: string,
  onWarning?: (message: string) => void,
): Promise<RegistryAuth | undefined> {
  const program = `docker-credential-${helper}`;
  const server = serverAddress(registry);
  try {
    // execa (some 100 modules) only where a helper is configured: every worker imports this file.
    const { execa } = await import('execa');
    const r = await execa(program, ['get'], { input: server, timeout: 30_000, reject: false });
    if (r.exitCode === undefined) {
      onWarning?.(`${program} could not be run: ${r.originalMessage || r.shortMessage}`);
      return undefined;
    }
    if (r.exitCode !== 0) {
      const msg = `${r.stdout}\n${r.stderr}`.trim();
      if (!/not found/i.test(msg)) onWarning?.(`${program} get failed (exit ${r.exitCode}): ${msg}`);
      return undefined;
    }
    const out = JSON.parse(r.stdout) as { Username?: string; Secret?: string; ServerURL?: string };
    if (!out.Secret) return undefined;
    // The helpers' convention for an identity (OAuth refresh) token.
    if (out.Username === '<token>') return { identitytoken: out.Secret, serveraddress: server };
    return { username: out.Username ?? '', password: out.Secret, serveraddress: server };
  } catch (err) {
    onWarning?.(`${program} could not be run: ${(err as Error).message}`);
    return undefined;
  }
}

/**
 * Credentials kept in a variable, for the image's registry. Accepted forms:
 *   user:password
 *   {"username": "...", "password": "..."}      (or "identitytoken", or "auth": base64 of user:password)
 *   {"auths": {"registry:5000": {...}}}         (a whole Docker config.json)
 */
export function parseAuthValue(value: string, image: string): RegistryAuth {
  const registry = registryOf(image);
  const trimmed = value.trim();
  if (trimmed.startsWith('{')) {
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(trimmed) as Record<string, unknown>;
    } catch {
      throw new Error('the registry auth variable holds invalid JSON');
    }
    if (obj.auths && typeof obj.auths === 'object') {
      const auths = obj.auths as Record<string, DockerConfigAuth>;
      const entry = Object.entries(auths).find(([k]) => normalizeRegistry(k) === registry)?.[1];
      const found = entry && fromConfigEntry(entry, registry);
      if (!found) throw new Error(`the registry auth variable has no credentials for ${registry}`);
      return found;
    }
    const lower = Object.fromEntries(Object.entries(obj).map(([k, v]) => [k.toLowerCase(), v])) as Record<
      string,
      string
    >;
    const found = fromConfigEntry(
      {
        auth: lower.auth,
        username: lower.username,
        password: lower.password ?? lower.secret,
        identitytoken: lower.identitytoken,
        registrytoken: lower.registrytoken,
      },
      registry,
    );
    if (!found)
      throw new Error('the registry auth variable needs username and password, identitytoken or auth');
    if (lower.serveraddress) found.serveraddress = lower.serveraddress;
    return found;
  }
  const i = trimmed.indexOf(':');
  if (i <= 0) throw new Error('the registry auth variable must be "user:password" or JSON');
  return {
    username: trimmed.slice(0, i),
    password: trimmed.slice(i + 1),
    serveraddress: serverAddress(registry),
  };
}
