// Writes oclif.manifest.json (every command's id, flags and args) after a build, so the CLI starts
// without importing every command module to find the one it runs.
import { writeFileSync } from 'node:fs';
import { Plugin } from '@oclif/core';

const plugin = new Plugin({
  root: process.cwd(),
  type: 'core',
  ignoreManifest: true,
  errorOnManifestCreate: true,
});
await plugin.load();
writeFileSync('oclif.manifest.json', JSON.stringify(plugin.manifest));
console.log(`oclif.manifest.json: ${Object.keys(plugin.manifest.commands).length} commands`);
