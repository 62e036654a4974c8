import { Flags } from '@oclif/core';
import { BaseCommand, EXIT_CODES_HELP } from '../cli/base-command.js';
import { LOG_LEVELS, metricsFlags, metricsListen } from '../cli/flags.js';
import { runExitCode } from '../cli/run-exit-code.js';
import { confText } from '../cli/conf-flags.js';
import { runUntilSignal } from '../cli/signals.js';
import { createLogger } from '../core/logger.js';
import type { ConnectionOptions } from '../services/config.js';
import { defaultConcurrency } from '../services/daemons.js';
import { runDagStandalone, startStandalone } from '../services/standalone.js';
import { startWebServer } from '../web/server.js';

export default class StandaloneCommand extends BaseCommand<typeof StandaloneCommand> {
  static override summary =
    'Run everything on this machine with nothing installed: embedded Postgres, scheduler, worker.';
  static override description = `Data is kept in the project's .airtasks/ folder, so a restart keeps every DAG, run and variable. Other airtasks commands started in the same project use it without flags. Ctrl-C stops it cleanly.

With --run DAG_ID it starts, runs that DAG once, prints the outcome and stops (exit code = outcome).

${EXIT_CODES_HELP}`;
  static override examples = [
    '<%= config.bin %> standalone',
    '<%= config.bin %> standalone --run example_interleaved',
  ];
  static override flags = {
    run: Flags.string({ summary: 'Run this DAG once, print the outcome and stop.' }),
    conf: Flags.string({
      summary: 'With --run: run parameters (JSON object).',
      dependsOn: ['run'],
      exclusive: ['conf-file'],
    }),
    'conf-file': Flags.string({
      summary: 'With --run: read run parameters from this file.',
      dependsOn: ['run'],
    }),
    timeout: Flags.integer({
      summary: 'With --run: give up after this many seconds (exit 12).',
      min: 1,
      dependsOn: ['run'],
    }),
    concurrency: Flags.integer({
      char: 'c',
      summary: 'Tasks run at once (default: number of CPUs, at least 2).',
      min: 1,
    }),
    port: Flags.integer({ summary: 'Port of the embedded Postgres (default: a free one).' }),
    'web-port': Flags.integer({
      summary: 'Port of the dashboard on 127.0.0.1 (default: 8080 when free, else a free one).',
      min: 0,
      max: 65535,
    }),
    web: Flags.boolean({ summary: 'Serve the dashboard (airtasks web) too.', default: true, allowNo: true }),
    'run-as': Flags.string({
      summary: 'Run tasks as this unprivileged user (standalone must run as root); see docs/security.md.',
      env: 'AIRTASKS_RUN_AS',
    }),
    'log-level': Flags.string({ env: 'AIRTASKS_LOG_LEVEL', options: LOG_LEVELS }),
    ...metricsFlags,
  };

  async run() {
    const f = this.flags;
    // A one-shot run shows task progress, not the daemons' chatter.
    const logger = createLogger({ level: f['log-level'] ?? (f.run ? 'warn' : 'info'), name: 'airtasks' });
    const common = {
      dagsFolder: f['dags-folder'],
      port: f.port,
      concurrency: f.concurrency ?? defaultConcurrency(),
      logger,
      metrics: metricsListen(f),
      startWeb: f.web
        ? async (connection: ConnectionOptions) => {
            const start = (port: number) => startWebServer({ connection, port, logger });
            // 8080 when it is free, as `airtasks web`; another standalone or server may hold it.
            const web = await (f['web-port'] !== undefined
              ? start(f['web-port'])
              : start(8080).catch(() => start(0)));
            return { url: web.url, stop: () => web.close() };
          }
        : undefined,
      runAs: f['run-as'],
    };
    if (f.run) {
      const conf = await confText(f);
      this.progress(`Starting airtasks standalone and running ${f.run} ...`);
      const r = await runDagStandalone({
        ...common,
        dagId: f.run,
        confText: conf,
        timeoutMs: f.timeout ? f.timeout * 1000 : undefined,
        onNotice: (m) => process.stderr.write(`Warning: ${m}\n`),
        onWeb: (url) => this.progress(`Dashboard: ${url}`),
        onTaskChange: (t) =>
          this.progress(`  ${t.taskId}: ${t.state}${t.tryNumber > 1 ? ` (try ${t.tryNumber})` : ''}`),
      });
      const counts = Object.entries(
        r.tasks.reduce<Record<string, number>>(
          (acc, t) => ({ ...acc, [t.state]: (acc[t.state] ?? 0) + 1 }),
          {},
        ),
      )
        .map(([s, n]) => `${n} ${s}`)
        .join(', ');
      this.log(`Run ${r.runId} of ${r.dagId}: ${r.state} (${r.tasks.length} tasks: ${counts})`);
      this.setExitCode(runExitCode(r.state));
      return r;
    }
    const sa = await startStandalone(common);
    this.progress(
      `airtasks standalone is running (dags: ${sa.dagsFolder}, data: ${sa.dataDir}). Ctrl-C to stop.`,
    );
    if (sa.webUrl) this.progress(`Dashboard: ${sa.webUrl}`);
    this.progress(`From another terminal in this project: airtasks trigger dag <dag_id> --wait`);
    if (sa.metricsUrl) this.progress(`Metrics: ${sa.metricsUrl}`);
    await runUntilSignal(
      () => sa.stop(),
      (m) => logger.info(m),
    );
    return { databaseUrl: sa.databaseUrl };
  }
}
