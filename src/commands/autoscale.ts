import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { dockerHostFlag, logLevelFlag } from '../cli/flags.js';
import { runDaemon } from '../cli/signals.js';
import { table } from '../cli/table.js';
import { commaList } from '../core/comma-list.js';
import { toMs } from '../core/duration.js';
import type { Duration } from '../core/duration.js';
import { ExitCode, usageError } from '../core/errors.js';
import { createLogger, silentLogger } from '../core/logger.js';
import { autoscaleOnce, startAutoscaler, type AutoscalePass } from '../services/autoscale/index.js';

function duration(flag: string, value: string): number {
  try {
    return toMs((/^\d+$/.test(value) ? `${value}s` : value) as Duration, `--${flag}`);
  } catch (err) {
    throw usageError((err as Error).message);
  }
}

export default class AutoscaleCommand extends BaseCommand<typeof AutoscaleCommand> {
  static override summary =
    "Scale each queue's worker service to its backlog (long-lived; on a swarm manager).";
  static override description =
    'For every queue of airtasks.json with a "max": workers = ceil((ready + held tasks) / concurrency), ' +
    'clamped to min..max. Scales up at once, down only after --cooldown of low backlog; a failed read ' +
    "keeps the current size. Acts on the swarm service <stack>_worker-<queue> and runs the queue's " +
    'nodeGroupHook with the machines it needs. --once does one pass; --dry-run acts on nothing.';
  static override examples = [
    '<%= config.bin %> autoscale --interval 10s --cooldown 2m',
    '<%= config.bin %> autoscale --once --dry-run --json',
  ];
  static override flags = {
    once: Flags.boolean({ summary: 'One pass, print the decisions, exit.' }),
    'dry-run': Flags.boolean({ summary: 'Decide only: scale nothing, run no hook.' }),
    interval: Flags.string({
      summary: 'Time between passes (e.g. 10s).',
      default: '10s',
      env: 'AIRTASKS_AUTOSCALE_INTERVAL',
    }),
    cooldown: Flags.string({
      summary: 'Low backlog needed before a scale-down, for queues without their own "cooldown".',
      default: '2m',
      env: 'AIRTASKS_AUTOSCALE_COOLDOWN',
    }),
    queues: Flags.string({
      char: 'q',
      summary: 'Comma-separated queues (default: every queue with a "max").',
    }),
    stack: Flags.string({
      summary: "Stack whose worker-<queue> services are scaled (default: airtasks.json's stackName).",
      env: 'AIRTASKS_STACK',
    }),
    'hook-timeout': Flags.string({ summary: 'Time a node-group hook may run.', default: '2m' }),
    'docker-host': dockerHostFlag(),
    'log-level': logLevelFlag,
  };

  async run(): Promise<AutoscalePass | undefined> {
    const f = this.flags;
    if (this.jsonEnabled() && !f.once) throw usageError('--json prints one pass: use it with --once');
    const opts = {
      ...this.connection(),
      ...(f.stack ? { stack: f.stack } : {}),
      dockerHost: f['docker-host'],
      ...(f.queues
        ? {
            queues: commaList(f.queues),
          }
        : {}),
      cooldownMs: duration('cooldown', f.cooldown),
      hookTimeoutMs: duration('hook-timeout', f['hook-timeout']),
      dryRun: f['dry-run'],
    };
    const intervalMs = duration('interval', f.interval);
    if (intervalMs < 100) throw usageError('--interval must be at least 100ms');
    if (f.once) {
      // One pass reports its decisions (reasons and errors included) as the result; logs would repeat them.
      const r = await autoscaleOnce({ ...opts, logger: silentLogger });
      this.log(
        table(
          [
            'QUEUE',
            'SERVICE',
            'READY',
            'UNACKED',
            'RUNNING',
            'BACKLOG',
            'CURRENT',
            'TARGET',
            'ACTION',
            'NODES',
            'REASON',
          ],
          r.queues.map((q) => [
            q.queue,
            q.service,
            q.inputs?.ready ?? '?',
            q.inputs?.unacked ?? '-',
            q.inputs?.running ?? '?',
            q.backlog ?? '?',
            q.current ?? '?',
            q.target ?? '?',
            r.dryRun && q.target !== q.current ? `${q.action} (dry run)` : q.action,
            q.nodes ? `${q.nodes.desired} (${q.nodes.hook})` : '-',
            q.error && !q.reason.includes(q.error) ? `${q.reason} [${q.error}]` : q.reason,
          ]),
        ),
      );
      // The decisions are printed either way; a pass that could not read everything is not a clean exit.
      if (r.queues.some((q) => q.action === 'read-failed' || q.error)) this.setExitCode(ExitCode.UNAVAILABLE);
      return r;
    }
    const logger = createLogger({ level: f['log-level'], name: 'airtasks' });
    await runDaemon(
      () => startAutoscaler({ ...opts, logger, intervalMs }),
      (m) => logger.info(m),
    );
    return undefined;
  }
}
