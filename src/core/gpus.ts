/**
 * GPU requests as DAG files write them (`gpus` on any task) and GPUs as workers report them: shared by the
 * DAG builder's checks, the workers that hand out devices, and what `status` shows.
 */

/** What a task asks for: a count, every GPU of its worker, or specific device ids (index or UUID). */
export type GpuRequest = number | 'all' | readonly string[];

/** A device id as nvidia-smi names it: an index, or a GPU/MIG UUID. */
export const GPU_ID_PATTERN = /^(\d+|(GPU|MIG)-[0-9A-Za-z/-]+)$/;

/** One GPU of a worker, as it reports it; model and memory are null where nvidia-smi could not tell. */
export interface GpuInfo {
  /** The device id the worker hands to tasks (an nvidia-smi index, or a UUID it was given). */
  id: string;
  model: string | null;
  memoryMiB: number | null;
}

/** What is wrong with a `gpus` value of a DAG file, or null when it is a valid request. */
export function gpuRequestProblem(v: unknown): string | null {
  const forms = "a whole number >= 0, 'all', or a list of device ids (e.g. ['0', '1'] or GPU UUIDs)";
  if (v === 'all') return null;
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? null : `gpus must be ${forms}, not ${v}`;
  if (!Array.isArray(v)) return `gpus must be ${forms}, not ${JSON.stringify(v)}`;
  const seen = new Set<string>();
  for (const id of v as unknown[]) {
    if (typeof id !== 'string' || !GPU_ID_PATTERN.test(id))
      return `gpus: invalid device id ${JSON.stringify(id)} (give nvidia-smi indexes as strings, e.g. '0', or GPU UUIDs)`;
    if (seen.has(id)) return `gpus: device "${id}" is listed twice`;
    seen.add(id);
  }
  return null;
}
