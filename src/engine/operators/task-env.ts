/**
 * The environment a task sees: the AIRTASKS_* variables every kind of task gets, and on the worker's host
 * (not in a container) the worker's own environment scrubbed of every engine credential and setting. A task
 * needs neither the database nor the broker nor the secret key: it reads variables through its worker.
 */
import type { OperatorContext } from './types.js';

/** Names the try, for a bash command and a container alike; AIRTASKS_WORKER_ID only when a worker runs it. */
export function taskEnv(ctx: Pick<OperatorContext, 'run' | 'workerId'>): Record<string, string> {
  return {
    ...(ctx.workerId ? { AIRTASKS_WORKER_ID: ctx.workerId } : {}),
    AIRTASKS_DAG_ID: ctx.run.dagId,
    AIRTASKS_RUN_ID: ctx.run.runId,
    AIRTASKS_TASK_ID: ctx.run.taskId,
    AIRTASKS_TRY_NUMBER: String(ctx.run.tryNumber),
    AIRTASKS_LOGICAL_DATE: ctx.run.logicalDate.toISOString(),
    AIRTASKS_CONF: JSON.stringify(ctx.run.conf),
  };
}

/**
 * What a task process on the worker's host sees of the GPUs lent to it (ctx.gpuIds): only those. The
 * indexes are nvidia-smi's, so CUDA counts devices in the same (PCI bus) order. Empty when the worker did
 * not lend it any. Not for containers: they see their devices renumbered from 0 (docker-create.ts).
 */
export function gpuEnv(ctx: Pick<OperatorContext, 'gpuIds'>): Record<string, string> {
  if (!ctx.gpuIds) return {};
  const ids = ctx.gpuIds.join(',');
  return {
    CUDA_VISIBLE_DEVICES: ids,
    CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
    NVIDIA_VISIBLE_DEVICES: ids === '' ? 'void' : ids,
    AIRTASKS_GPUS: ids,
  };
}

/**
 * Names that are the engine's, whatever their value: its own settings (AIRTASKS_*, the task's own are added
 * back by taskEnv), libpq's (PGPASSWORD, PGHOST...), and the usual names of service URLs.
 */
const ENGINE_NAME =
  /^(AIRTASKS_|PG[A-Z]*$)|(^|_)(DATABASE|BROKER|AMQP|RABBITMQ|POSTGRES(QL)?)_(URL|URI|PASSWORD)$/;

/**
 * Values the engine holds: no variable may contain one (its resolved URLs, the secret key) or be one (a
 * password; a short one, `guest`, is only matched whole, else it would scrub unrelated variables).
 */
const containedValues = new Set<string>();
const wholeValues = new Set<string>();

/** Passwords at least this long are looked for inside values too. */
const LONG_PASSWORD = 12;

/**
 * Registers values a task must never find in its environment under any name: the worker's database and
 * broker URLs as resolved (a password may come from a file), their passwords, the secret key.
 */
export function hideFromTasks(...values: Array<string | undefined | null>) {
  const add = (set: Set<string>, s: string) => {
    if (s.length >= 4 && !set.has(s)) {
      set.add(s);
      baseEnv = null;
    }
  };
  for (const v of values) {
    if (!v) continue;
    add(containedValues, v.trim());
    try {
      const u = new URL(v);
      for (const p of new Set([u.password, decodeURIComponent(u.password)])) {
        if (p) add(p.length >= LONG_PASSWORD ? containedValues : wholeValues, p);
      }
    } catch {
      // Not a URL: the value itself is enough.
    }
  }
}

/** Whether a variable of the worker's environment is the engine's (by its name or its value). */
export function isEngineVariable(name: string, value: string | undefined): boolean {
  if (ENGINE_NAME.test(name)) return true;
  if (value === undefined) return false;
  if (wholeValues.has(value)) return true;
  for (const v of containedValues) if (value.includes(v)) return true;
  return false;
}

/**
 * The worker's environment without anything of the engine's: what the process host (and so every task on
 * this host) starts with. Copied once per change of the hidden values: copying process.env is slow (each
 * read crosses into C++), half a millisecond per task here.
 */
let baseEnv: Record<string, string> | null = null;
export function workerEnv(): Record<string, string> {
  if (!baseEnv) {
    // Values of the worker's own settings count too: DATABASE_URL=$AIRTASKS_DATABASE_URL is the same secret.
    for (const [k, v] of Object.entries(process.env)) {
      if (/^AIRTASKS_(DATABASE_URL|BROKER_URL|SECRET_KEY)$/.test(k)) hideFromTasks(v);
    }
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && !isEngineVariable(k, v)) env[k] = v;
    }
    baseEnv = env;
  }
  return baseEnv;
}
