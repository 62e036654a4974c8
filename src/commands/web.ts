import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { logLevelFlag } from '../cli/flags.js';
import { runUntilSignal } from '../cli/signals.js';
import { createLogger } from '../core/logger.js';
import { startWebServer } from '../web/server.js';

export default class WebCommand extends BaseCommand<typeof WebCommand> {
  static override summary = 'Serve the dashboard and its JSON API (long-lived).';
  static override description = `Pages for DAGs, runs, logs, workers, queues, the swarm, variables and pools, updated live; the same data as JSON under /api/v1 (docs/openapi.yaml). Binds 127.0.0.1 unless --host says otherwise; a non-loopback address needs --token (or AIRTASKS_WEB_TOKEN), unless only an authenticating proxy reaches it (--behind-proxy, as in the stack). Secret values are never shown. SIGTERM/SIGINT stop it.`;
  static override enableJsonFlag = false;
  static override examples = [
    '<%= config.bin %> web',
    '<%= config.bin %> web --host 0.0.0.0 --port 8080 --token "$(openssl rand -hex 16)"',
  ];
  static override flags = {
    host: Flags.string({ summary: 'Address to listen on.', default: '127.0.0.1', env: 'AIRTASKS_WEB_HOST' }),
    port: Flags.integer({
      summary: 'Port to listen on (0: a free one).',
      default: 8080,
      min: 0,
      max: 65535,
      env: 'AIRTASKS_WEB_PORT',
    }),
    token: Flags.string({
      summary: 'Token that every request must give (Bearer header, or the login form).',
      env: 'AIRTASKS_WEB_TOKEN',
    }),
    'behind-proxy': Flags.boolean({
      summary: 'Only an authenticating proxy reaches this address: no token needed on a non-loopback host.',
      env: 'AIRTASKS_WEB_BEHIND_PROXY',
    }),
    stack: Flags.string({
      summary:
        "Stack whose swarm page and autoscaler decisions are shown (default: airtasks.json's stackName).",
      env: 'AIRTASKS_STACK',
    }),
    'log-level': logLevelFlag,
  };

  async run() {
    const logger = createLogger({ level: this.flags['log-level'], name: 'airtasks' });
    const web = await startWebServer({
      connection: this.connection(),
      host: this.flags.host,
      port: this.flags.port,
      token: this.flags.token ?? null,
      behindProxy: this.flags['behind-proxy'],
      ...(this.flags.stack ? { stack: this.flags.stack } : {}),
      logger,
    });
    process.stderr.write(`airtasks dashboard: ${web.url}\n`);
    await runUntilSignal(
      () => web.close(),
      (m) => logger.info(m),
    );
  }
}
