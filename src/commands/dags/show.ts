import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { table } from '../../cli/table.js';
import { showDag } from '../../services/dags.js';

export default class DagsShow extends BaseCommand<typeof DagsShow> {
  static override stackRelay = true;
  static override summary = "Show a DAG's tasks, dependencies and options.";
  static override args = { dagId: Args.string({ required: true, description: 'DAG id' }) };

  async run() {
    const d = await showDag({ ...this.connection(), dagId: this.args.dagId });
    this.log(`${d.dagId}  (${d.fileloc}, version ${d.hash}${d.paused ? ', paused' : ''})`);
    if (d.description) this.log(d.description);
    if (d.schedule) {
      const s = d.schedule;
      this.log(
        `schedule: ${s.cron} in ${s.timezone}, from ${s.startDate}${s.endDate ? ` to ${s.endDate}` : ''}, catchup ${s.catchup ? 'on' : 'off'}`,
      );
      if (d.nextRunAt)
        this.log(
          `next run: logical date ${d.nextLogicalDate ?? '?'}, created at ${d.nextRunAt}${d.paused ? ' (once unpaused)' : ''}`,
        );
    } else this.log('schedule: none (manual runs only)');
    if (d.maxActiveRuns !== undefined || d.maxActiveTasks !== undefined)
      this.log(
        `max active runs: ${d.maxActiveRuns ?? 'no limit'}, max active tasks: ${d.maxActiveTasks ?? 'no limit'}`,
      );
    this.log(
      table(
        ['TASK', 'OPERATOR', 'QUEUE', 'POOL', 'WEIGHT', 'RETRIES', 'TRIGGER RULE', 'UPSTREAM'],
        d.tasks.map((t) => [
          t.taskId,
          t.operator,
          t.queue,
          t.pool ? (t.poolSlots === 1 ? t.pool : `${t.pool} x${t.poolSlots}`) : '',
          t.priorityWeight,
          t.retries,
          t.triggerRule,
          t.upstream.join(', '),
        ]),
      ),
    );
    const params = d.paramList;
    if (params.length > 0) {
      this.log('');
      this.log(
        table(
          ['PARAM', 'TYPE', 'REQUIRED', 'DEFAULT', 'DESCRIPTION'],
          params.map((p) => [
            p.name,
            p.type,
            p.required ? 'yes' : 'no',
            'default' in p ? JSON.stringify(p.default) : '',
            p.description ?? '',
          ]),
        ),
      );
    }
    const callbacks = [
      ...Object.keys(d.runCallbacks ?? {})
        .filter((k) => k !== 'queue')
        .map((k) => `${k} (run)`),
      ...d.tasks.flatMap((t) => Object.keys(t.callbacks ?? {}).map((k) => `${k} (${t.taskId})`)),
    ];
    if (callbacks.length > 0) this.log(`\ncallbacks: ${callbacks.join(', ')}`);
    return d;
  }
}
