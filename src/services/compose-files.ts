/**
 * The swarm stack file made fit for Docker Compose (v1 `docker-compose` and v2 `docker compose`),
 * in code, so deploy/stack.yml stays the one file users keep. Compose ignores or refuses the
 * swarm-only parts, so each file given to `deploy` is rewritten:
 * - external secrets become file secrets under the project's local secrets folder;
 * - configs (ignored by compose v1) become read-only bind mounts of their files;
 * - deploy.labels (ignored by compose) become container labels, so `status` finds queues;
 * - deploy.placement, deploy.mode and the rolling-update settings are dropped (one engine: every
 *   service runs here, once);
 * - a network named `host` (as swarm overrides attach it) becomes `network_mode: host`, and an
 *   overlay network the stack defines becomes a bridge (overlays need a swarm);
 * - relative bind mounts and files become absolute, since the rendered files live elsewhere;
 * - the first file's services restart unless stopped (swarm restarts failed tasks; compose does
 *   not, and a scheduler started before its database is up must try again);
 * - the autoscaler is left out: it resizes swarm services, and compose runs none;
 * - variables whose value is a swarm template (`{{.Service...}}`, `{{.Node...}}`, `{{.Task...}}`) are
 *   dropped: compose would pass the template text as it is (the service then uses its own default).
 */
import path from 'node:path';
import type { StackFile, StackService } from './stack-file.js';
import { COMPONENT_LABEL, serviceLabels } from './stack-file.js';

export interface SourceStack {
  /** The file it was read from (relative paths in it are relative to its folder). */
  file: string;
  value: StackFile;
}

type Entry = Record<string, unknown>;

function absolute(dir: string, p: string): string {
  return path.isAbsolute(p) ? p : path.resolve(dir, p);
}

/** Bind sources that compose would resolve against the file's folder: `./x`, `../x`, `~` stays. */
function bindVolume(dir: string, v: unknown): unknown {
  if (typeof v === 'string') {
    const [source, ...rest] = v.split(':');
    if (rest.length > 0 && source && source.startsWith('.'))
      return [absolute(dir, source), ...rest].join(':');
    return v;
  }
  if (v && typeof v === 'object') {
    const e = v as Entry;
    if (e.type === 'bind' && typeof e.source === 'string') return { ...e, source: absolute(dir, e.source) };
  }
  return v;
}

export interface ComposeContext {
  /** Where the file of a local secret lives (by the secret's real name). */
  secretFile: (name: string) => string;
}

/** Compose versions of the given stack files (same order; compose merges them as swarm would). */
export function toComposeFiles(sources: SourceStack[], ctx: ComposeContext): StackFile[] {
  // Top-level definitions may sit in one file and be used in another: collect them over all files.
  const configs = new Map<string, string>();
  const secrets = new Map<string, { external?: boolean; name?: string; file?: string; dir: string }>();
  const hostNetworks = new Set<string>();
  const swarmOnly = new Set<string>();
  for (const { file, value } of sources) {
    const dir = path.dirname(file);
    for (const [k, v] of Object.entries((value.configs ?? {}) as Record<string, Entry | null>))
      if (typeof v?.file === 'string') configs.set(k, absolute(dir, v.file));
    for (const [k, v] of Object.entries(value.secrets ?? {})) {
      const prev = secrets.get(k);
      secrets.set(k, { ...prev, ...(v ?? {}), dir: v?.file ? dir : (prev?.dir ?? dir) });
    }
    for (const [k, v] of Object.entries((value.networks ?? {}) as Record<string, Entry | null>))
      if ((v?.name ?? k) === 'host') hostNetworks.add(k);
    for (const [name, svc] of Object.entries(value.services ?? {}))
      if (serviceLabels(svc ?? {})[COMPONENT_LABEL] === 'autoscaler') swarmOnly.add(name);
  }

  return sources.map(({ file, value }, index) => {
    const dir = path.dirname(file);
    const out: StackFile = { ...value, services: {} };
    delete out.configs;
    if (value.secrets) {
      out.secrets = {};
      for (const k of Object.keys(value.secrets)) {
        const s = secrets.get(k)!;
        out.secrets[k] = {
          file: s.external ? ctx.secretFile(s.name ?? k) : absolute(s.dir, s.file ?? k),
        };
      }
    }
    if (value.networks) {
      const networks = Object.fromEntries(
        Object.entries(value.networks as Record<string, Entry | null>)
          .filter(([k]) => !hostNetworks.has(k))
          .map(([k, v]) => [k, v?.driver === 'overlay' && !v.external ? bridged(v) : v]),
      );
      if (Object.keys(networks).length > 0) out.networks = networks;
      else delete out.networks;
    }
    for (const [name, svc] of Object.entries(value.services ?? {}))
      if (!swarmOnly.has(name))
        out.services[name] = composeService(svc ?? {}, dir, configs, hostNetworks, index === 0);
    return out;
  });
}

/** A swarm service template (Go template syntax over the service, node or task). */
const SWARM_TEMPLATE = /\{\{[^}]*\.(Service|Node|Task)\b[^}]*\}\}/;

function composeService(
  svc: StackService,
  dir: string,
  configs: Map<string, string>,
  hostNetworks: Set<string>,
  restart: boolean,
): StackService {
  const out: StackService = { ...svc };
  if (restart && out.restart === undefined && !svc.deploy?.restart_policy) out.restart = 'unless-stopped';
  const volumes = ((svc.volumes as unknown[] | undefined) ?? []).map((v) => bindVolume(dir, v));
  for (const c of (svc.configs as Array<string | Entry> | undefined) ?? []) {
    const source = typeof c === 'string' ? c : String(c.source);
    const target = typeof c === 'string' || typeof c.target !== 'string' ? `/${source}` : c.target;
    const from = configs.get(source);
    if (from) volumes.push(`${from}:${target}:ro`);
  }
  delete out.configs;
  if (volumes.length > 0) out.volumes = volumes;

  const networks = svc.networks as string[] | Record<string, unknown> | undefined;
  const names = Array.isArray(networks) ? networks : Object.keys(networks ?? {});
  if (names.some((n) => hostNetworks.has(n))) {
    out.network_mode = 'host';
    delete out.networks;
  }

  if (svc.deploy) {
    const labels = serviceLabels(svc);
    if (Object.keys(labels).length > 0)
      out.labels = { ...labelsOf(svc.labels as Entry | string[] | undefined), ...labels };
    const deploy: Entry = { ...svc.deploy };
    for (const k of ['labels', 'placement', 'mode', 'update_config', 'rollback_config', 'endpoint_mode'])
      delete deploy[k];
    if (Object.keys(deploy).length > 0) out.deploy = deploy as StackService['deploy'];
    else delete out.deploy;
  }
  if (svc.environment && typeof svc.environment === 'object' && !Array.isArray(svc.environment)) {
    out.environment = Object.fromEntries(
      Object.entries(svc.environment as Entry).filter(
        ([, v]) => !(typeof v === 'string' && SWARM_TEMPLATE.test(v)),
      ),
    );
  }
  if (Array.isArray(svc.env_file)) out.env_file = (svc.env_file as string[]).map((f) => absolute(dir, f));
  else if (typeof svc.env_file === 'string') out.env_file = absolute(dir, svc.env_file);
  return out;
}

function bridged(network: Entry): Entry {
  const { driver: _driver, attachable: _attachable, driver_opts: _opts, ...rest } = network;
  return rest;
}

function labelsOf(l: Entry | string[] | undefined): Record<string, string> {
  if (!l) return {};
  if (Array.isArray(l))
    return Object.fromEntries(l.map((kv) => [kv.split('=')[0] ?? '', kv.split('=').slice(1).join('=')]));
  return Object.fromEntries(Object.entries(l).map(([k, v]) => [k, String(v)]));
}
