/**
 * The GPUs of one worker and which task holds which. A worker knows its devices (`--gpus 0,1`, or
 * what nvidia-smi lists) and hands each task specific device ids, so that two tasks never share a
 * GPU (a container gets those devices, a bash task sees only them, see task-env.ts). A request the worker can never satisfy fails at once; one that only has to wait for busy
 * devices waits (first come, first served), and gives up when its signal aborts.
 *
 *   const gpus = await GpuAllocator.fromSpec(spec);  // '0,1' | 'all' | 'none' | undefined (= detect)
 *   const lease = await gpus.acquire(2, { signal });       // { ids: ['0', '1'], release() }
 *   try { ... } finally { lease.release(); }
 */
import { execFile } from 'node:child_process';
import { commaList } from '../../core/comma-list.js';
import { ValidationError } from '../../core/errors.js';
import { GPU_ID_PATTERN, type GpuInfo, type GpuRequest } from '../../core/gpus.js';

export type { GpuInfo, GpuRequest };

export class GpuRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GpuRequestError';
  }
}

export interface GpuLease {
  /** The device ids the task may use (nvidia-smi indexes or UUIDs, as the worker was given them). */
  readonly ids: readonly string[];
  /** Gives the devices back; calling it again does nothing. */
  release(): void;
}

/** The try a lease or a wait belongs to, so others can see who holds which GPU (`airtasks why`, metrics). */
export interface GpuHolder {
  runId: string;
  taskId: string;
  tryNumber: number;
}

/** Who holds which device and who waits, as the worker records it in its row. */
export interface GpuSnapshot {
  devices: string[];
  held: Array<GpuHolder & { ids: string[] }>;
  waiting: Array<GpuHolder & { request: string }>;
}

interface Waiter {
  ids: readonly string[] | null;
  count: number;
  holder?: GpuHolder;
  request: string;
  resolve(lease: GpuLease): void;
}

export class GpuAllocator {
  readonly devices: readonly string[];
  /** The devices as the worker reports them (model and memory where nvidia-smi told them). */
  readonly info: readonly GpuInfo[];
  private readonly busy = new Set<string>();
  private readonly waiters: Waiter[] = [];
  private readonly holders = new Map<GpuLease, GpuHolder & { ids: string[] }>();
  private readonly listeners = new Set<(s: GpuSnapshot) => void>();

  constructor(devices: readonly string[], info: readonly GpuInfo[] = []) {
    const seen = new Set<string>();
    for (const d of devices) {
      if (seen.has(d)) throw new GpuRequestError(`GPU "${d}" is listed twice`);
      seen.add(d);
    }
    this.devices = [...devices];
    const known = new Map(info.map((g) => [g.id, g]));
    this.info = devices.map((id) => known.get(id) ?? { id, model: null, memoryMiB: null });
  }

  /**
   * From a worker's `gpus` setting (`--gpus`): comma-separated device ids (`0,1`, `GPU-6f2c...`), `all` (what
   * nvidia-smi lists), `none` or '' (no GPUs); undefined also detects with nvidia-smi.
   */
  static async fromSpec(spec: string | undefined, opts: DetectOptions = {}): Promise<GpuAllocator> {
    const parsed = parseGpuSpec(spec);
    if (parsed !== 'detect' && parsed.length === 0) return new GpuAllocator([]);
    // Declared devices need no nvidia-smi; where there is one, it tells their model and memory.
    const info = await detectGpuInfo(opts);
    return new GpuAllocator(parsed === 'detect' ? info.map((g) => g.id) : parsed, info);
  }

  /** Devices no task holds now. */
  get free(): string[] {
    return this.devices.filter((d) => !this.busy.has(d));
  }

  /**
   * Reserves devices for a task. Throws GpuRequestError at once when the worker can never satisfy the
   * request; waits while the devices exist but are held by other tasks.
   */
  acquire(request: GpuRequest, opts: { signal?: AbortSignal; holder?: GpuHolder } = {}): Promise<GpuLease> {
    let waiter: Omit<Waiter, 'resolve'>;
    try {
      waiter = { ...this.check(request), holder: opts.holder, request: describeRequest(request) };
    } catch (err) {
      return Promise.reject(err);
    }
    if (waiter.count === 0) return Promise.resolve({ ids: [], release() {} });
    return new Promise<GpuLease>((resolve, reject) => {
      const signal = opts.signal;
      if (signal?.aborted)
        return reject(new GpuRequestError(`stopped while waiting for GPUs: ${String(signal.reason)}`));
      const entry: Waiter = {
        ...waiter,
        resolve: (lease) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(lease);
        },
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(entry);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new GpuRequestError(`stopped while waiting for GPUs: ${String(signal?.reason)}`));
        this.grant();
        this.changed();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(entry);
      this.grant();
      this.changed();
    });
  }

  /** Calls fn with a snapshot whenever a lease is taken or given back, or a wait starts or ends. */
  onChange(fn: (s: GpuSnapshot) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  snapshot(): GpuSnapshot {
    return {
      devices: [...this.devices],
      held: [...this.holders.values()].map((h) => ({ ...h, ids: [...h.ids] })),
      waiting: this.waiters.flatMap((w) => (w.holder ? [{ ...w.holder, request: w.request }] : [])),
    };
  }

  private changed() {
    if (this.listeners.size === 0) return;
    const s = this.snapshot();
    for (const fn of this.listeners) fn(s);
  }

  private check(request: GpuRequest): Omit<Waiter, 'resolve' | 'holder' | 'request'> {
    const have = this.devices.length;
    const what = have === 0 ? 'none' : `${have} (${this.devices.join(', ')})`;
    const hint =
      have === 0
        ? ': run it on a worker with GPUs (start the worker with --gpus, or where nvidia-smi lists the GPUs)'
        : ': ask for fewer, or run it on a worker with more GPUs';
    if (request === 'all') {
      if (have === 0) throw new GpuRequestError(`the task asks for all GPUs but this worker has none${hint}`);
      return { ids: this.devices, count: have };
    }
    if (typeof request === 'number') {
      if (!Number.isInteger(request) || request < 0) {
        throw new GpuRequestError(
          `gpus must be a whole number >= 0, 'all' or a list of device ids, not ${request}`,
        );
      }
      if (request > have)
        throw new GpuRequestError(`the task asks for ${request} GPU(s) but this worker has ${what}${hint}`);
      return { ids: null, count: request };
    }
    if (!Array.isArray(request))
      throw new GpuRequestError(`gpus must be a number, 'all' or a list of device ids`);
    const ids = [...new Set(request.map(String))];
    const unknown = ids.filter((id) => !this.devices.includes(id));
    if (unknown.length > 0) {
      throw new GpuRequestError(
        `the task asks for GPU(s) ${unknown.join(', ')} but this worker has ${what}${hint}`,
      );
    }
    return { ids, count: ids.length };
  }

  /** Serves waiters in arrival order; a waiter that cannot be served blocks those behind it (no starvation). */
  private grant() {
    while (this.waiters.length > 0) {
      const w = this.waiters[0]!;
      const ids = w.ids ? (w.ids.every((d) => !this.busy.has(d)) ? w.ids : null) : this.pick(w.count);
      if (!ids) return;
      this.waiters.shift();
      for (const d of ids) this.busy.add(d);
      let released = false;
      const lease: GpuLease = {
        ids: [...ids],
        release: () => {
          if (released) return;
          released = true;
          for (const d of ids) this.busy.delete(d);
          this.holders.delete(lease);
          this.grant();
          this.changed();
        },
      };
      if (w.holder) this.holders.set(lease, { ...w.holder, ids: [...ids] });
      w.resolve(lease);
    }
  }

  private pick(count: number): string[] | null {
    const free = this.free;
    return free.length >= count ? free.slice(0, count) : null;
  }
}

/**
 * A worker's `gpus` setting: device ids, or 'detect' for all / unset. A value it cannot use is a
 * ValidationError of field `gpus` (the CLI names its flag, --gpus) that lists the accepted forms.
 */
export function parseGpuSpec(spec: string | undefined): string[] | 'detect' {
  if (spec === undefined) return 'detect';
  const s = spec.trim();
  if (s === 'all') return 'detect';
  if (s === '' || s === 'none') return [];
  const ids = commaList(s);
  const forms = 'give device indexes or UUIDs separated by commas (e.g. 0,1 or GPU-<uuid>), "all" or "none"';
  const seen = new Set<string>();
  for (const id of ids) {
    if (!GPU_ID_PATTERN.test(id)) {
      throw new ValidationError(
        'gpus',
        'malformed',
        (name) => `invalid GPU id "${id}" in ${name}: ${forms}`,
        {
          value: spec,
        },
      );
    }
    if (seen.has(id))
      throw new ValidationError('gpus', 'malformed', (name) => `GPU "${id}" is listed twice in ${name}`, {
        value: spec,
      });
    seen.add(id);
  }
  return ids;
}

export interface DetectOptions {
  /** The nvidia-smi program; default `nvidia-smi` on PATH. */
  command?: string;
  timeoutMs?: number;
}

/** The GPUs nvidia-smi lists, by index; none when nvidia-smi is missing or fails. */
export async function detectGpus(opts: DetectOptions = {}): Promise<string[]> {
  return (await detectGpuInfo(opts)).map((g) => g.id);
}

/** The GPUs nvidia-smi lists, with their model and memory; none when nvidia-smi is missing or fails. */
export function detectGpuInfo(opts: DetectOptions = {}): Promise<GpuInfo[]> {
  return new Promise((resolve) => {
    execFile(
      opts.command ?? 'nvidia-smi',
      [NVIDIA_SMI_QUERY, '--format=csv,noheader'],
      { timeout: opts.timeoutMs ?? 10_000 },
      (err, stdout) => resolve(err ? [] : parseNvidiaSmiInfo(String(stdout))),
    );
  });
}

export const NVIDIA_SMI_QUERY = '--query-gpu=index,name,memory.total';

/** Lines of `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader` -> indexes. */
export function parseNvidiaSmi(out: string): string[] {
  return parseNvidiaSmiInfo(out).map((g) => g.id);
}

/** Lines like `0, NVIDIA H100 80GB HBM3, 81559 MiB` -> GpuInfo (a name may hold commas: it is the middle). */
export function parseNvidiaSmiInfo(out: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const line of out.split('\n')) {
    const parts = line.split(',').map((p) => p.trim());
    const index = parts[0];
    if (!index || !/^\d+$/.test(index)) continue;
    // The last column is the memory ('[N/A]' where unknown), the columns between are the name.
    const memory = parts.length >= 3 ? /^(\d+)\s*MiB$/i.exec(parts.at(-1)!) : null;
    const model = parts.slice(1, parts.length >= 3 ? -1 : undefined).join(', ');
    gpus.push({ id: index, model: model || null, memoryMiB: memory ? Number(memory[1]) : null });
  }
  return gpus;
}

function describeRequest(request: GpuRequest): string {
  return request === 'all' ? 'all' : typeof request === 'number' ? String(request) : [...request].join(', ');
}
