/** --conf and --conf-file: run parameters given inline or read from a file, as JSON text for the services. */
import { readFile } from 'node:fs/promises';
import { Flags } from '@oclif/core';
import { usageError } from '../core/errors.js';

export const confFlags = {
  conf: Flags.string({ summary: 'Run parameters: a JSON object.', exclusive: ['conf-file'] }),
  'conf-file': Flags.string({ summary: 'Read the run parameters from this JSON file.' }),
};

/** The conf text of the flags: --conf-file's content, else --conf (undefined: none given). */
export async function confText(f: { conf?: string; 'conf-file'?: string }): Promise<string | undefined> {
  const file = f['conf-file'];
  if (!file) return f.conf;
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw usageError(`cannot read --conf-file ${file}: ${(err as Error).message}`);
  }
}
