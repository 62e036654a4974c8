/**
 * A worker loads what its tasks use: the template engine (nunjucks) when a template is first rendered, the
 * process runner of Docker's credential helpers (execa) when a helper is first run. Each is some 50 to 100
 * modules a worker of node or plain bash tasks would otherwise hold for its whole life.
 */
import { expect } from 'chai';
import { runModuleScript } from '../helpers/fresh-node.js';

const WORKER_COMMAND = new URL('../../src/commands/worker.ts', import.meta.url).href;
const RENDER = new URL('../../src/engine/templates/render.ts', import.meta.url).href;

/** Runs a module script in a fresh Node; it reports the CommonJS packages loaded, by name. */
async function loadedAfter(body: string): Promise<{ packages: string[]; out: unknown }> {
  const script = `
    import { createRequire } from 'node:module';
    let out = null;
    ${body}
    const cached = Object.keys(createRequire(import.meta.url).cache);
    const packages = [...new Set(cached.flatMap((f) => f.match(/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//)?.[1] ?? []))];
    console.log(JSON.stringify({ packages, out }));`;
  const stdout = await runModuleScript(script);
  return JSON.parse(stdout) as { packages: string[]; out: unknown };
}

describe("the worker's imports", function () {
  this.timeout(30_000);

  it('hold neither nunjucks nor execa (cross-spawn stands for it) until a task needs them', async () => {
    const { packages } = await loadedAfter(`await import(${JSON.stringify(WORKER_COMMAND)});`);
    expect(packages).to.include('pg'); // the check sees what is loaded
    expect(packages).to.not.include('nunjucks');
    expect(packages).to.not.include('cross-spawn');
  });

  it('load nunjucks for the first template, with the filters added before it', async () => {
    const { packages, out } = await loadedAfter(`
      const { render } = await import(${JSON.stringify(RENDER)});
      out = [render('plain', {}), render("{{ x | shquote }} {{ y | json }}", { x: "it's", y: [1] })];`);
    expect(packages).to.include('nunjucks');
    expect(out).to.deep.equal(['plain', `'it'\\''s' [1]`]);
  });
});
