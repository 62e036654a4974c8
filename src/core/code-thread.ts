/**
 * A worker thread running one of the engine's modules. Built, the module's .js file is there; run from the
 * sources (tests, development), only its .ts file is, and a thread does not get the tsx loader its process
 * was started with: it loads tsx itself. tsx's ES module API is found through its package.json, which also
 * works when tsx loaded this module as CommonJS (there import.meta.resolve is undefined, and require's
 * resolution picks tsx's CommonJS API, which cannot register its loader from a thread).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** A thread of the module at `js` (a file URL ending in .js), or of its .ts sibling through tsx. */
export function codeThread(js: URL, options: WorkerOptions = {}): Worker {
  if (existsSync(fileURLToPath(js))) return new Worker(js, options);
  const ts = JSON.stringify(js.href.replace(/\.js$/, '.ts'));
  const api = JSON.stringify(tsxEsmApi(js).href);
  return new Worker(`import(${api}).then((m) => m.tsImport(${ts}, ${ts}))`, { ...options, eval: true });
}

/** The file URL of tsx's `tsx/esm/api` for ES modules, as seen from `from`. */
function tsxEsmApi(from: URL): URL {
  const manifest = createRequire(from).resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as {
    exports: { './esm/api': { import: { default: string } } };
  };
  return pathToFileURL(path.join(path.dirname(manifest), pkg.exports['./esm/api'].import.default));
}
