import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { logLevelFlag, metricsFlags, metricsListen } from '../cli/flags.js';
import { runDaemon } from '../cli/signals.js';
import { createLogger } from '../core/logger.js';
import { startScheduler } from '../services/daemons.js';
import { withMetricsServer } from '../services/metrics/daemon.js';

export default class SchedulerCommand extends BaseCommand<typeof SchedulerCommand> {
  static override summary =
    'Run the scheduler (long-lived): parses DAG files, starts runs, queues ready tasks.';
  static override description =
    'Migrates the schema on start. Several schedulers may run at once. SIGTERM/SIGINT stop it cleanly.';
  static override enableJsonFlag = false;
  static override flags = {
    'zombie-threshold': Flags.integer({
      summary: 'Seconds without heartbeat before a worker is declared lost.',
      default: 30,
      min: 1,
    }),
    'requeue-after': Flags.integer({
      summary:
        'Seconds a queued task may stay unclaimed, with its queue empty, before its lost message is sent again.',
      default: 60,
      min: 1,
    }),
    'scan-interval': Flags.integer({
      summary:
        'Milliseconds between full scans of the dags folder, a safety net: changes are seen at once by watching it (lower it where the folder is a network mount that announces no changes).',
      default: 30_000,
      min: 100,
    }),
    'log-level': logLevelFlag,
    ...metricsFlags,
  };

  async run() {
    const logger = createLogger({ level: this.flags['log-level'], name: 'airtasks' });
    await runDaemon(
      () =>
        withMetricsServer(metricsListen(this.flags), logger, (metrics) =>
          startScheduler({
            ...this.connection(),
            logger,
            metrics,
            zombieThresholdMs: this.flags['zombie-threshold'] * 1000,
            dagScanIntervalMs: this.flags['scan-interval'],
            requeueAfterMs: this.flags['requeue-after'] * 1000,
          }),
        ),
      (m) => logger.info(m),
    );
  }
}
