/**
 * Child process that imports DAG files and sends their serialised DAGs back over IPC.
 * A separate process so that a file that throws, hangs or calls process.exit harms nothing else;
 * stdout/stderr of user code go to the parent's log, never into the results.
 */
import { pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';
import { dagsOfModule } from './dags-of-module.js';
import type { FileResult, ParseRequest } from './loader.js';

// One loader for the whole batch: tsImport() per file would add a loader hook per file, and every later
// import runs through all of them (1,000 files took 98 s, most of it in the hook chain).
register();

process.on('message', async (req: ParseRequest) => {
  const results: FileResult[] = [];
  for (const f of req.files) {
    const started = Date.now();
    try {
      const mod = (await import(pathToFileURL(f.path).href)) as Record<string, unknown>;
      const dags = dagsOfModule(mod).map((d) => d.serialize(f.fileloc));
      results.push({ fileloc: f.fileloc, dags, error: null, durationMs: Date.now() - started });
    } catch (err) {
      results.push({ fileloc: f.fileloc, dags: [], error: describe(err), durationMs: Date.now() - started });
    }
  }
  process.send!(results, () => process.exit(0));
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
