import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { runExitCode } from '../../cli/run-exit-code.js';
import { testDag, type LocalRunResult } from '../../services/local-test.js';

export default class TasksTest extends BaseCommand<typeof TasksTest> {
  static override summary =
    'Run one task of a DAG in this process, once, ignoring its upstreams (no database).';
  static override args = {
    dagId: Args.string({ required: true, description: 'DAG id' }),
    taskId: Args.string({ required: true, description: 'task id' }),
  };
  static override flags = {
    conf: Flags.string({ summary: 'Run parameters: a JSON object.' }),
    variables: Flags.string({ summary: 'Variables the task may read: a JSON object.' }),
  };

  async run(): Promise<LocalRunResult> {
    const r = await testDag({
      dagsFolder: this.flags['dags-folder'],
      dagId: this.args.dagId,
      taskId: this.args.taskId,
      confText: this.flags.conf,
      variablesText: this.flags.variables,
      onLog: (_task, _try, stream, line) => this.progress(stream === 'stdout' ? line : `(${stream}) ${line}`),
    });
    const t = r.tasks[0]!;
    this.log(
      `${t.taskId}: ${t.state}${t.error ? ` (${t.error})` : ''}; output: ${JSON.stringify(t.output ?? null)}`,
    );
    this.setExitCode(runExitCode(r.state));
    return r;
  }
}
