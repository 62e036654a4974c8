/**
 * docs/cli.md is generated from the commands by oclif's readme generator (`npm run docs`). This regenerates
 * it from the build into a temporary copy, exactly as `npm run docs` does, and fails when the committed file
 * differs: a command, flag or description changed without the reference. Offline, about a second; it needs
 * a build (dist/ and oclif.manifest.json), which `npm test` makes first.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const REFERENCE = path.join(ROOT, 'docs', 'cli.md');
const OCLIF = path.join(ROOT, 'node_modules', 'oclif', 'bin', 'run.js');
const MANIFEST = path.join(ROOT, 'oclif.manifest.json');
const FIX = 'run `npm run docs` (it builds, then regenerates docs/cli.md) and commit the result';

/** What `npm run docs` runs after the build, with the same settings, writing to `readmePath`. */
async function regenerate(readmePath: string): Promise<void> {
  await promisify(execFile)(
    process.execPath,
    [OCLIF, 'readme', '--readme-path', readmePath, '--no-source-links'],
    {
      cwd: ROOT,
      // Lines wrap at COLUMNS (oclif's default 120, pinned so a terminal's width changes nothing); no
      // update check (it would reach for the registry).
      env: { ...process.env, COLUMNS: '120', OCLIF_SKIP_NEW_VERSION_CHECK: 'true' },
      timeout: 60_000,
    },
  );
}

describe('CLI reference (docs/cli.md)', () => {
  let committed: string;
  let manifest: { commands: Record<string, { hidden?: boolean }> };

  before(async () => {
    if (!existsSync(MANIFEST) || !existsSync(path.join(ROOT, 'dist', 'commands')))
      throw new Error('no build to generate the reference from: run `npm run build` (or `npm run docs`)');
    committed = await readFile(REFERENCE, 'utf8');
    manifest = JSON.parse(await readFile(MANIFEST, 'utf8')) as typeof manifest;
  });

  it('keeps the markers the generator writes between', () => {
    // Without them `oclif readme` changes nothing, and the comparison below would pass on any text.
    expect(committed).to.include('<!-- commands -->\n');
    expect(committed).to.include('<!-- commandsstop -->');
  });

  it('has a section for every command', () => {
    const missing = Object.entries(manifest.commands)
      .filter(([, c]) => !c.hidden)
      .map(([id]) => `airtasks ${id.replaceAll(':', ' ')}`)
      .filter((name) => !new RegExp(`^## \`${name}( |\`)`, 'm').test(committed));
    expect(missing, `docs/cli.md lacks ${missing.join(', ')}: ${FIX}`).to.deep.equal([]);
  });

  it('is what oclif readme generates from the commands', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'airtasks-cli-reference-'));
    try {
      const copy = path.join(dir, 'cli.md');
      await copyFile(REFERENCE, copy);
      await regenerate(copy);
      const generated = await readFile(copy, 'utf8');
      if (generated !== committed) {
        const a = committed.split('\n');
        const b = generated.split('\n');
        const differs = a.findIndex((l, i) => l !== b[i]);
        const line = differs < 0 ? a.length : differs;
        expect.fail(
          `docs/cli.md is out of date with the commands: ${FIX}.\n` +
            `First difference at line ${line + 1}:\n  committed: ${a[line] ?? '(end of file)'}\n` +
            `  generated: ${b[line] ?? '(end of file)'}`,
        );
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
