/** `dags test` and `tasks test`: run in this process, no services. */
import { runLocally, type LocalRunOptions, type LocalRunResult } from '../engine/local/local-run.js';
import { resolveDagsFolder } from './config.js';
import { parseConf } from './trigger.js';

export type { LocalRunResult };

export async function testDag(
  o: Omit<LocalRunOptions, 'dagsFolder' | 'conf'> & {
    dagsFolder?: string;
    confText?: string;
    variablesText?: string;
  },
): Promise<LocalRunResult> {
  const conf = parseConf(o.confText);
  const variables = o.variablesText ? stringValues(parseConf(o.variablesText, 'variables')) : undefined;
  return runLocally({ ...o, conf, variables, dagsFolder: resolveDagsFolder({ dagsFolder: o.dagsFolder }) });
}

function stringValues(v: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(v).map(([k, x]) => [k, typeof x === 'string' ? x : JSON.stringify(x)]),
  );
}
