import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { dockerHostFlag } from '../cli/flags.js';
import { table } from '../cli/table.js';
import type { GpuInfo } from '../core/gpus.js';
import { stackStatus, type StatusResult } from '../services/deploy.js';

export default class Status extends BaseCommand<typeof Status> {
  static override summary =
    "The deployed stack's services and replicas; each queue's waiting tasks, live workers and depth.";
  static override description =
    "Queue depths need the database and broker: the connection flags or env, else (no database configured here) they are read in the deployed stack's scheduler container on this Docker engine; without either the services are still shown.";
  static override flags = {
    stack: Flags.string({ summary: "Stack name (default: airtasks.json's stackName)." }),
    'docker-host': dockerHostFlag(),
  };

  async run(): Promise<StatusResult> {
    const r = await stackStatus({
      ...this.connection(),
      ...(this.flags.stack ? { stack: this.flags.stack } : {}),
      dockerHost: this.flags['docker-host'],
    });
    if (r.servicesError) this.log(`stack ${r.stack}: services unknown (${r.servicesError.split('\n')[0]})`);
    else this.log(`stack ${r.stack}${r.services.length === 0 ? ': not deployed' : ''}`);
    if (r.services.length > 0)
      this.log(
        table(
          ['SERVICE', 'MODE', 'REPLICAS', 'IMAGE'],
          r.services.map((s) => [s.name, s.mode, `${s.running}/${s.desired}`, s.image]),
        ),
      );
    this.log('');
    this.log(
      table(
        ['QUEUE', 'QUEUED TASKS', 'WORKERS', 'CONCURRENCY', 'READY', 'UNACKED', 'CONSUMERS', 'SERVICES'],
        r.queues.map((q) => [
          q.queue,
          q.queuedTasks ?? '?',
          q.workers ?? '?',
          q.concurrency,
          q.depth?.ready ?? '?',
          q.depth?.unacked ?? '?',
          q.depth?.consumers ?? '?',
          q.services.join(','),
        ]),
      ),
    );
    if (r.workers.length > 0) {
      this.log('');
      this.log(
        table(
          ['WORKER', 'HOST', 'QUEUES', 'CONCURRENCY', 'GPUS'],
          r.workers.map((w) => [w.workerId, w.hostname, w.queues.join(','), w.concurrency, gpusText(w.gpus)]),
        ),
      );
    }
    if (r.depthError) this.progress(`queue depths unavailable: ${r.depthError}`);
    for (const w of r.warnings) this.progress(`warning: ${w}`);
    return r;
  }
}

/** `0 NVIDIA H100 80GB HBM3 (80 GiB), 1 ...`; a device declared with --gpus and unknown to nvidia-smi: its id. */
function gpusText(gpus: GpuInfo[]): string {
  if (gpus.length === 0) return '-';
  const gib = (mib: number) => `${Math.round((mib / 1024) * 10) / 10} GiB`;
  return gpus
    .map((g) =>
      [g.id, g.model, g.memoryMiB !== null ? `(${gib(g.memoryMiB)})` : null].filter(Boolean).join(' '),
    )
    .join(', ');
}
