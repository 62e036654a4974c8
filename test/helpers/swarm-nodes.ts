/**
 * A two-node swarm of the test's own on this one machine (the recipe of ../shared/DESIGN.md, "A
 * two-node swarm"), leaving the machine's own engine and its one-node swarm alone:
 *   - two network namespaces, each with a veth pair to a bridge in the host namespace, addresses
 *     192.168.213.1 (manager) and .2 (worker); the bridge has no address of the host's and the
 *     namespaces no default route, so their traffic stays between them;
 *   - `iptables -I FORWARD -i <bridge> -o <bridge> -j ACCEPT` (the host's dockerd sets FORWARD to DROP,
 *     and bridged frames pass iptables);
 *   - one dockerd per namespace, started with `nsenter --net` (not `ip netns exec`, which remounts /sys
 *     so dockerd finds no cgroups), in a UTS namespace (the node's own host name) and a private mount
 *     namespace in which the engine's socket is bound over /var/run/docker.sock: a stack's bind mount
 *     of the Docker socket (the workers', the autoscaler's) reaches its own node's engine, as on a real
 *     machine. Its overlay and network mounts live and die with that mount namespace;
 *   - `swarm init` on the manager's address (the host's swarm advertises 127.0.0.1, which no other
 *     namespace can reach), `swarm join` from the worker.
 * Images are copied with `docker save | docker load` (no registry here). Everything is undone by
 * remove(); a run killed before that leaves a state folder whose owner process is gone, which the
 * next start removes (removeStaleSwarms).
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { connectDocker } from '../../src/docker/engine.js';
import { sleep } from './docker.js';

const run = promisify(execFile);

/** Sockets, pid files, logs and the owner's pid, one folder per swarm (short: socket paths are limited). */
const STATE_ROOT = '/run/airtasks-nodes';
/** The engines' data roots (images, volumes, swarm state): removed with the swarm. */
const DATA_ROOT = '/var/lib/airtasks-nodes';
const SUBNET = '192.168.213';

export type Role = 'manager' | 'worker';

export interface NodeEngine {
  role: Role;
  /** The swarm node's host name (its engine's UTS namespace). */
  hostname: string;
  nodeId: string;
  /** The node's address on the bridge (the swarm's advertise address). */
  address: string;
  /** DOCKER_HOST for this engine. */
  dockerHost: string;
  docker: Docker;
}

export interface TwoNodeSwarm {
  id: string;
  manager: NodeEngine;
  worker: NodeEngine;
  /** `docker save` from this machine's engine into each engine given (in parallel). */
  copyImages(images: string[], to: NodeEngine[]): Promise<void>;
  /** The last lines of both engines' logs, for failure messages. */
  logs(): Promise<string>;
  /** Stops the engines and removes namespaces, bridge, rule, data and state. Safe to call twice. */
  remove(): Promise<void>;
}

interface Names {
  id: string;
  state: string;
  data: string;
  bridge: string;
  netns: (r: Role) => string;
  hostname: (r: Role) => string;
}

function names(id: string): Names {
  const short = (r: Role) => r[0];
  return {
    id,
    state: path.join(STATE_ROOT, id),
    data: path.join(DATA_ROOT, id),
    // Interface names have at most 15 characters.
    bridge: `atn${id}br`,
    netns: (r) => `airtasks-nodes-${id}-${short(r)}`,
    hostname: (r) => `airtasks-${id}-${r}`,
  };
}

const ROLES: Role[] = ['manager', 'worker'];
const addressOf = (r: Role) => `${SUBNET}.${ROLES.indexOf(r) + 1}`;
const socketOf = (n: Names, r: Role) => path.join(n.state, r[0]!, 'docker.sock');
const pidfileOf = (n: Names, r: Role) => path.join(n.state, r[0]!, 'docker.pid');
const logOf = (n: Names, r: Role) => path.join(n.state, r[0]!, 'dockerd.log');

async function sh(cmd: string, args: string[], timeout = 60_000): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { timeout, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.message}${e.stderr ? `\n${e.stderr}` : ''}`);
  }
}

/**
 * Call in before(): skips the suite, saying why, where this machine cannot make network namespaces,
 * bridges and rules (no root, no `ip netns`, no iptables, no dockerd); in CI (CI=true) that fails it.
 */
export async function requireNamespaces(ctx: Mocha.Context): Promise<void> {
  const probe = `airtasks-probe-${process.pid}`;
  try {
    for (const tool of ['ip', 'iptables', 'nsenter', 'unshare', 'dockerd', 'mount'])
      await sh('sh', ['-c', `command -v ${tool}`]).catch(() => {
        throw new Error(`${tool} is not installed`);
      });
    if (!existsSync('/var/run/docker.sock'))
      throw new Error("/var/run/docker.sock is missing (each node's engine socket is bound over it)");
    await sh('ip', ['netns', 'add', probe]);
    await sh('ip', ['netns', 'del', probe]);
    await sh('iptables', ['-S', 'FORWARD']);
  } catch (err) {
    const why = `a two-node swarm needs network namespaces, a bridge and an iptables rule of its own (root, iproute2, iptables, util-linux, dockerd): ${(err as Error).message}`;
    if (process.env.CI === 'true') throw new Error(why);
    process.stderr.write(`skipping: ${why}\n`);
    ctx.skip();
  }
}

/** Makes the namespaces, bridge, rule and engines, and the swarm; undoes what it made on failure. */
export async function startTwoNodeSwarm(): Promise<TwoNodeSwarm> {
  await removeStaleSwarms();
  const n = names(randomBytes(3).toString('hex'));
  await mkdir(n.state, { recursive: true });
  await writeFile(path.join(n.state, 'owner'), String(process.pid));
  const swarm = {
    id: n.id,
    copyImages: (images: string[], to: NodeEngine[]) =>
      Promise.all(
        to.map((e) =>
          sh(
            'bash',
            [
              '-o',
              'pipefail',
              '-c',
              'docker save "${@:2}" | docker -H "$1" load -q',
              '_',
              e.dockerHost,
              ...images,
            ],
            600_000,
          ),
        ),
      ).then(() => undefined),
    logs: async () => {
      const tails = await Promise.all(
        ROLES.map(
          async (r) =>
            `--- dockerd ${r}:\n${(await readFile(logOf(n, r), 'utf8').catch(() => '')).slice(-3000)}`,
        ),
      );
      return tails.join('\n');
    },
    remove: () => removeSwarm(n),
  } as TwoNodeSwarm;
  try {
    await sh('ip', ['link', 'add', n.bridge, 'type', 'bridge']);
    await sh('ip', ['link', 'set', n.bridge, 'up']);
    await sh('iptables', ['-I', 'FORWARD', '-i', n.bridge, '-o', n.bridge, '-j', 'ACCEPT']);
    for (const r of ROLES) {
      const ns = n.netns(r);
      const [host, inside] = [`atn${n.id}${r[0]}h`, `atn${n.id}${r[0]}n`];
      await sh('ip', ['netns', 'add', ns]);
      await sh('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', inside]);
      await sh('ip', ['link', 'set', host, 'master', n.bridge, 'up']);
      await sh('ip', ['link', 'set', inside, 'netns', ns]);
      await sh('ip', ['-n', ns, 'addr', 'add', `${addressOf(r)}/24`, 'dev', inside]);
      await sh('ip', ['-n', ns, 'link', 'set', inside, 'up']);
      await sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      await startEngine(n, r);
    }
    const engines = await Promise.all(ROLES.map((r) => waitForEngine(n, r)));
    const [manager, worker] = engines as [NodeEngine, NodeEngine];
    await sh('docker', [
      '-H',
      manager.dockerHost,
      'swarm',
      'init',
      '--advertise-addr',
      manager.address,
      '--listen-addr',
      `${manager.address}:2377`,
    ]);
    const token = (
      await sh('docker', ['-H', manager.dockerHost, 'swarm', 'join-token', '-q', 'worker'])
    ).trim();
    await sh('docker', [
      '-H',
      worker.dockerHost,
      'swarm',
      'join',
      '--token',
      token,
      '--advertise-addr',
      worker.address,
      '--listen-addr',
      `${worker.address}:2377`,
      `${manager.address}:2377`,
    ]);
    for (const e of engines)
      e.nodeId = (await sh('docker', ['-H', e.dockerHost, 'info', '--format', '{{.Swarm.NodeID}}'])).trim();
    // Both nodes ready before anything is placed.
    const end = Date.now() + 60_000;
    for (;;) {
      const nodes = await manager.docker.listNodes();
      if (nodes.length === 2 && nodes.every((x) => x.Status?.State === 'ready')) break;
      if (Date.now() > end) throw new Error(`the swarm's nodes are not ready: ${JSON.stringify(nodes)}`);
      await sleep(500);
    }
    return Object.assign(swarm, { manager, worker });
  } catch (err) {
    const logs = await swarm.logs();
    await removeSwarm(n).catch(() => undefined);
    throw new Error(`${(err as Error).message}\n${logs}`);
  }
}

/**
 * dockerd in the node's namespaces. The shell binds the engine's socket over /var/run/docker.sock once
 * it exists (inside the private mount namespace only), then waits for dockerd.
 */
async function startEngine(n: Names, r: Role): Promise<void> {
  const dir = path.dirname(socketOf(n, r));
  await mkdir(dir, { recursive: true });
  await mkdir(path.join(n.data, r), { recursive: true });
  const script = [
    'hostname "$1"',
    'dockerd --data-root "$2" --exec-root "$3" -H "unix://$4" --pidfile "$5" --bip "$6" --cgroup-parent "$7" --shutdown-timeout 2 &',
    'pid=$!',
    'until [ -S "$4" ]; do kill -0 $pid || exit 1; sleep 0.1; done',
    'mount --bind "$4" /var/run/docker.sock',
    'wait $pid',
  ].join('\n');
  const log = openSync(logOf(n, r), 'a');
  const child = spawn(
    'nsenter',
    [
      `--net=/run/netns/${n.netns(r)}`,
      'unshare',
      '--uts',
      '--mount',
      '--propagation',
      'private',
      '--',
      'sh',
      '-c',
      script,
      'sh',
      n.hostname(r),
      path.join(n.data, r),
      path.join(dir, 'exec'),
      socketOf(n, r),
      pidfileOf(n, r),
      // docker0 inside the namespace: its own, but kept apart from the host's 172.17/16 anyway.
      `172.30.${ROLES.indexOf(r) + 1}.1/24`,
      `airtasks-nodes-${n.id}`,
    ],
    { detached: true, stdio: ['ignore', log, log] },
  );
  child.unref();
  closeSync(log);
}

async function waitForEngine(n: Names, r: Role): Promise<NodeEngine> {
  const dockerHost = `unix://${socketOf(n, r)}`;
  const docker = connectDocker({ host: dockerHost });
  const end = Date.now() + 90_000;
  for (;;) {
    const ok = await docker.info().then(
      (i: { Name?: string }) => i.Name === n.hostname(r),
      () => false,
    );
    // The bind over /var/run/docker.sock comes right after the socket: its containers need it.
    if (ok && (await mountedInEngine(n, r))) break;
    if (Date.now() > end) throw new Error(`the ${r} engine did not answer within 90 s`);
    await sleep(300);
  }
  return { role: r, hostname: n.hostname(r), nodeId: '', address: addressOf(r), dockerHost, docker };
}

/** Whether the engine's mount namespace has its socket bound over /var/run/docker.sock. */
async function mountedInEngine(n: Names, r: Role): Promise<boolean> {
  const pid = (await readFile(pidfileOf(n, r), 'utf8').catch(() => '')).trim();
  if (!pid) return false;
  const mounts = await readFile(`/proc/${pid}/mountinfo`, 'utf8').catch(() => '');
  return mounts.split('\n').some((l) => l.split(' ')[4] === '/run/docker.sock');
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The processes in a network namespace of ours (the engine, its containerd, shims and containers). */
async function pidsIn(ns: string): Promise<number[]> {
  const out = await sh('ip', ['netns', 'pids', ns]).catch(() => '');
  return out
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((p) => p > 0);
}

async function removeSwarm(n: Names): Promise<void> {
  const problems: string[] = [];
  const attempt = async (what: string, f: () => Promise<unknown>) => {
    try {
      await f();
    } catch (err) {
      problems.push(`${what}: ${(err as Error).message}`);
    }
  };
  // dockerd first (it stops its containers within --shutdown-timeout, unmounts and stops containerd),
  // then whatever is left in the namespace, by pid.
  await Promise.all(
    ROLES.map(async (r) => {
      const pid = Number((await readFile(pidfileOf(n, r), 'utf8').catch(() => '')).trim());
      if (pid > 0 && alive(pid)) {
        process.kill(pid, 'SIGTERM');
        for (let i = 0; i < 60 && alive(pid); i++) await sleep(500);
      }
      for (let i = 0; i < 20; i++) {
        const left = await pidsIn(n.netns(r));
        if (left.length === 0) break;
        for (const p of left) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        await sleep(250);
      }
    }),
  );
  for (const r of ROLES)
    await attempt(`netns ${n.netns(r)}`, async () => {
      const list = await sh('ip', ['netns', 'list']);
      if (list.split('\n').some((l) => l.split(' ')[0] === n.netns(r)))
        await sh('ip', ['netns', 'del', n.netns(r)]);
    });
  await attempt(`bridge ${n.bridge}`, async () => {
    if (existsSync(`/sys/class/net/${n.bridge}`)) await sh('ip', ['link', 'del', n.bridge]);
  });
  await attempt('the FORWARD rule', async () => {
    const rule = ['FORWARD', '-i', n.bridge, '-o', n.bridge, '-j', 'ACCEPT'];
    while (
      await sh('iptables', ['-C', ...rule]).then(
        () => true,
        () => false,
      )
    )
      await sh('iptables', ['-D', ...rule]);
  });
  await attempt('cgroups', () => removeCgroups(`airtasks-nodes-${n.id}`));
  // The engines' mounts were in their own mount namespaces, gone with their processes.
  await attempt('data', () => rm(n.data, { recursive: true, force: true }));
  await attempt('state', () => rm(n.state, { recursive: true, force: true }));
  if (problems.length > 0) throw new Error(`could not remove all of swarm ${n.id}:\n${problems.join('\n')}`);
}

/** The containers' cgroups (--cgroup-parent) of every hierarchy, deepest first, once their processes ended. */
async function removeCgroups(parent: string): Promise<void> {
  const roots = await readdir('/sys/fs/cgroup').catch(() => [] as string[]);
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await walk(path.join(dir, e.name));
    // cgroupfs directories go with rmdir (their files cannot be unlinked).
    await rmdir(dir).catch(() => undefined);
  };
  for (const root of roots) {
    const dir = path.join('/sys/fs/cgroup', root, parent);
    if (existsSync(dir)) await walk(dir);
  }
}

/** Swarms of test runs that ended without remove() (their owner process is gone). */
export async function removeStaleSwarms(): Promise<void> {
  const ids = await readdir(STATE_ROOT).catch(() => [] as string[]);
  for (const id of ids) {
    const owner = Number((await readFile(path.join(STATE_ROOT, id, 'owner'), 'utf8').catch(() => '')).trim());
    if (owner > 0 && alive(owner)) continue;
    await removeSwarm(names(id)).catch((err: Error) =>
      process.stderr.write(`could not remove a stale test swarm: ${err.message}\n`),
    );
  }
}
