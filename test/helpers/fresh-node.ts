/** A module script run in a fresh Node process (TypeScript through tsx): what it prints on stdout. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export async function runModuleScript(script: string): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [
    '--import',
    'tsx',
    '--input-type=module',
    '-e',
    script,
  ]);
  return stdout;
}
