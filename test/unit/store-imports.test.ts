/**
 * Opening the store loads nothing it does not use: pg's check for a Cloudflare Worker must not load Node's
 * bundled fetch (undici) in the worker, the scheduler and every CLI command, and must leave no global
 * behind.
 */
import { expect } from 'chai';
import { runModuleScript } from '../helpers/fresh-node.js';

const DB = new URL('../../src/engine/store/db.ts', import.meta.url).href;

describe('importing the store', function () {
  this.timeout(30_000);

  it("loads pg without Node's fetch, and leaves no navigator defined by it", async () => {
    const script = `
      const before = typeof globalThis.navigator;
      await import(${JSON.stringify(DB)});
      console.log(JSON.stringify({
        undici: process.moduleLoadList.filter((m) => m.includes('undici')),
        navigator: typeof globalThis.navigator === before,
      }));`;
    const stdout = await runModuleScript(script);
    expect(JSON.parse(stdout)).to.deep.equal({ undici: [], navigator: true });
  });
});
