/**
 * Child process that imports DAG files and sends their serialised DAGs back over IPC.
 * A separate process so that a file that throws, hangs or calls process.exit harms nothing else;
 * stdout/stderr of user code go to the parent's log, never into the results.
 */
import { pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';
import { dagsOfModule } from './dags-of-module.js';
import type { ChildMessage, FileResult, ParseRequest } from './loader.js';

// One loader for the whole batch: tsImport() per file would add a loader hook per file, and every later
// import runs through all of them (1,000 files took 98 s, most of it in the hook chain).
register();

// Each result goes as soon as it is known, so that a file that hangs or ends the process loses only
// its own: the parent blames the file after the last result and parses the rest in a new child.
const send = (m: ChildMessage) => new Promise<void>((resolve) => process.send!(m, () => resolve()));

process.on('message', async (req: ParseRequest) => {
  for (const f of req.files) {
    const started = Date.now();
    let result: FileResult;
    try {
      const mod = (await import(pathToFileURL(f.path).href)) as Record<string, unknown>;
      const dags = dagsOfModule(mod).map((d) => d.serialize(f.fileloc));
      result = { fileloc: f.fileloc, dags, error: null, durationMs: Date.now() - started };
    } catch (err) {
      result = { fileloc: f.fileloc, dags: [], error: describe(err), durationMs: Date.now() - started };
    }
    await send(result);
  }
  await send('done');
  process.exit(0);
});

function describe(err: unknown): string {
  if (err instanceof Error) {
    const where = err.stack?.split('\n').find((l) => l.includes('file://') || l.includes('/'));
    return where && err.name !== 'DagValidationError'
      ? `${err.name}: ${err.message}\n${where.trim()}`
      : err.message;
  }
  return String(err);
}
