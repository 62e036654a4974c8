import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { logLevelFlag, metricsFlags, metricsListen } from '../cli/flags.js';
import { runDaemon } from '../cli/signals.js';
import { commaList } from '../core/comma-list.js';
import { usageError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { startWorker } from '../services/daemons.js';
import { withMetricsServer } from '../services/metrics/daemon.js';

export default class WorkerCommand extends BaseCommand<typeof WorkerCommand> {
  static override summary = 'Run a worker (long-lived) on one or more queues.';
  static override description =
    'Takes tasks from its queues, at most --concurrency at a time. SIGTERM/SIGINT: stops taking work, lets running tasks finish within --grace seconds, exits 0.';
  static override examples = ['<%= config.bin %> worker -q worker,gpu --concurrency 4'];
  static override enableJsonFlag = false;
  static override flags = {
    queues: Flags.string({
      char: 'q',
      summary: 'Comma-separated queues to take tasks from.',
      default: 'worker',
      env: 'AIRTASKS_QUEUES',
    }),
    concurrency: Flags.integer({
      char: 'c',
      summary: 'Tasks run at once.',
      default: 1,
      min: 1,
      env: 'AIRTASKS_CONCURRENCY',
    }),
    grace: Flags.integer({
      summary: 'Seconds running tasks get to finish on shutdown.',
      default: 30,
      min: 0,
    }),
    'heartbeat-interval': Flags.integer({
      summary: 'Milliseconds between heartbeats.',
      default: 2000,
      min: 100,
    }),
    gpus: Flags.string({
      summary:
        "GPUs this worker lends to tasks that ask for them, one task per device: '0,1', 'all' or 'none' (default: detected with nvidia-smi).",
      env: 'AIRTASKS_WORKER_GPUS',
    }),
    'run-as': Flags.string({
      summary:
        "Run tasks as this unprivileged user: they cannot read the worker's environment, the secret key or /run/secrets (the worker must run as root; see docs/security.md).",
      env: 'AIRTASKS_RUN_AS',
    }),
    'log-level': logLevelFlag,
    ...metricsFlags,
  };

  async run() {
    const logger = createLogger({ level: this.flags['log-level'], name: 'airtasks' });
    const queues = parseQueues(this.flags.queues);
    await runDaemon(
      () =>
        withMetricsServer(metricsListen(this.flags), logger, (metrics) =>
          startWorker({
            ...this.connection(),
            logger,
            metrics,
            queues,
            concurrency: this.flags.concurrency,
            graceMs: this.flags.grace * 1000,
            heartbeatMs: this.flags['heartbeat-interval'],
            gpus: this.flags.gpus,
            runAs: this.flags['run-as'],
          }),
        ),
      (m) => logger.info(m),
    );
  }
}

/** The queues of -q, each once; with the flag's own example when it names none. */
function parseQueues(text: string): string[] {
  const queues = [...new Set(commaList(text))];
  if (queues.length === 0) throw usageError('--queues needs at least one queue name, e.g. -q worker,gpu');
  return queues;
}
