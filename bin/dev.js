#!/usr/bin/env -S node --import tsx
// Runs the TypeScript sources directly (no build): for working on airtasks itself.
import { rmSync } from 'node:fs';
import { execute } from '@oclif/core';

// The manifest `npm run build` writes describes the built commands; the sources may have others.
rmSync(new URL('../oclif.manifest.json', import.meta.url), { force: true });

await execute({ development: true, dir: import.meta.url });
