/** Sizes and CPU counts as the docker CLI writes them. */

const UNITS: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** `512m`, `1.5g`, `8G`, `1024k`, `100b` or a number of bytes -> bytes (binary units, as the docker CLI). */
export function parseBytes(value: string | number, what = 'size'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0)
      throw new Error(`${what} must be a non-negative number of bytes`);
    return Math.floor(value);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([bkmgt])?(?:i?b)?\s*$/i.exec(value);
  if (!m)
    throw new Error(
      `${what} "${value}" is not a size: use bytes or a number with b, k, m, g or t (e.g. 512m, 2g)`,
    );
  return Math.floor(Number(m[1]) * UNITS[(m[2] ?? 'b').toLowerCase()]!);
}

/** A fractional CPU count -> the engine's NanoCpus. */
export function nanoCpus(cpus: number): number {
  if (!Number.isFinite(cpus) || cpus <= 0) throw new Error(`cpus must be a positive number, not ${cpus}`);
  return Math.round(cpus * 1e9);
}
