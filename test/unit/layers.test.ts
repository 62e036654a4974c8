/**
 * The layers of src/ (docs/architecture.md): commands and pages call services, services call the engine,
 * the engine calls docker, the broker and the store, and core is beside all. An import that points up a
 * layer or sideways fails here, naming the file and the import.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const SRC = path.resolve('src');

type Layer =
  'core' | 'store' | 'broker' | 'docker' | 'engine' | 'services' | 'web' | 'cli' | 'commands' | 'api';

/** What each layer may import (itself included). */
const ALLOWED: Record<Layer, readonly Layer[]> = {
  core: ['core'],
  store: ['core', 'store'],
  broker: ['core', 'store', 'broker'],
  docker: ['core', 'docker'],
  engine: ['core', 'store', 'broker', 'docker', 'engine'],
  services: ['core', 'store', 'broker', 'docker', 'engine', 'services'],
  web: ['core', 'services', 'web'],
  cli: ['core', 'services', 'cli'],
  // Commands start the web server (`airtasks web`, standalone); the web layer itself reaches only services.
  commands: ['core', 'services', 'cli', 'commands', 'web'],
  // The package's face for DAG files: the authoring API only.
  api: ['core', 'engine'],
};

function layerOf(file: string): Layer {
  const rel = path.relative(SRC, file).split(path.sep);
  if (rel[0] === 'engine' && rel[1] === 'store') return 'store';
  if (rel[0] === 'engine' && rel[1] === 'broker') return 'broker';
  if (rel.length === 1 && rel[0] === 'index.ts') return 'api';
  const top = rel[0] as Layer;
  if (!(top in ALLOWED)) throw new Error(`${file} is in no known layer (src/${rel[0]})`);
  return top;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Relative module specifiers of static imports, re-exports and dynamic imports. */
function importsOf(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"`;]*?from\s+['"](\.[^'"]+)['"]/g))
    found.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/g)) found.push(m[1]!);
  return found;
}

describe('layers of src/', () => {
  const files = sources(SRC);

  it('finds the source files', () => {
    expect(files.length).to.be.greaterThan(100);
  });

  it('has no import that points up a layer or sideways', () => {
    const bad: string[] = [];
    for (const file of files) {
      const from = layerOf(file);
      for (const spec of importsOf(readFileSync(file, 'utf8'))) {
        const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts');
        if (!target.startsWith(SRC + path.sep)) {
          bad.push(`${path.relative(SRC, file)} imports ${spec}, outside src/`);
          continue;
        }
        const to = layerOf(target);
        if (!ALLOWED[from].includes(to))
          bad.push(`${path.relative(SRC, file)} (${from}) imports ${spec} (${to})`);
      }
    }
    expect(bad, bad.join('\n')).to.deep.equal([]);
  });

  it('keeps files under ~350 lines, or says why in their first comment', () => {
    const long = files.filter((file) => {
      const text = readFileSync(file, 'utf8');
      const lines = text.split('\n').length;
      if (lines <= 360) return false;
      const head = /^\s*\/\*\*?([\s\S]*?)\*\//.exec(text)?.[1] ?? '';
      return !/\bLong because\b/.test(head);
    });
    expect(
      long.map((f) => path.relative(SRC, f)),
      'files over 360 lines need "Long because ..." in their first comment',
    ).to.deep.equal([]);
  });
});
