/** Run params from the CLI: `trigger dag` refuses invalid conf (exit 2) before writing anything; `dags show` lists them. */
import { expect } from 'chai';
import { E2eProject, runCli } from '../helpers/cli.js';
import { requireService } from '../helpers/env.js';

const DAGS = {
  'params.ts': `
import { dag } from 'airtasks';

export const p = dag<{ message: string; count: number }>('e2e_params', {
  params: {
    message: { type: 'string', default: 'hi', description: 'what to print' },
    count: { type: 'integer', minimum: 1 },
  },
});
p.bash('print', { command: 'echo "{{ conf.message }} x{{ conf.count }}"' });
`,
};

describe('e2e: run params', function () {
  this.timeout(60_000);
  const project = new E2eProject();
  let env: NodeJS.ProcessEnv;

  before(async function () {
    await requireService(this, 'postgres');
    env = (await project.create(DAGS)).env;
    await project.start(['scheduler', '--scan-interval', '200'], 'dags folder parsed');
  });

  after(() => project.remove());

  const runCount = async () =>
    Number(
      (await (await project.db()).query(`SELECT count(*) AS n FROM "${project.schema}".dag_runs`)).rows[0].n,
    );

  it('refuses invalid conf with exit 2, naming the field, and writes no run', async () => {
    for (const [conf, message] of [
      ['{"count": 0}', '/count must be >= 1'],
      ['{"message": "x"}', '/count is required'],
      ['{"count": 1, "message": 3}', '/message must be string'],
    ] as const) {
      const r = await runCli(['trigger', 'dag', 'e2e_params', '--conf', conf], env);
      expect(r.code, r.stderr).to.equal(2);
      expect(r.stderr).to.include(message).and.include('invalid conf for DAG "e2e_params"');
    }
    expect(await runCount()).to.equal(0);
  });

  it('merges the defaults into a valid conf', async () => {
    const r = await runCli(['trigger', 'dag', 'e2e_params', '--conf', '{"count": 2}', '--json'], env);
    expect(r.code, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout).conf).to.deep.equal({ message: 'hi', count: 2 });
    expect(await runCount()).to.equal(1);
  });

  it('lists the params in dags show', async () => {
    const r = await runCli(['dags', 'show', 'e2e_params'], env);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/PARAM\s+TYPE\s+REQUIRED\s+DEFAULT\s+DESCRIPTION/);
    expect(r.stdout).to.match(/message\s+string\s+no\s+"hi"\s+what to print/);
    expect(r.stdout).to.match(/count\s+integer\s+yes/);
    const json = JSON.parse((await runCli(['dags', 'show', 'e2e_params', '--json'], env)).stdout);
    expect(json.params.required).to.deep.equal(['count']);
  });

  it('dags test refuses invalid conf the same way', async () => {
    const r = await runCli(['dags', 'test', 'e2e_params', '--conf', '{"count": 0}'], {
      AIRTASKS_DATABASE_URL: '',
      AIRTASKS_DAGS_FOLDER: env.AIRTASKS_DAGS_FOLDER,
    });
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('/count must be >= 1');
  });
});
