#!/usr/bin/env -S node --max-semi-space-size=2
// A young generation of 2 MiB per semi-space: V8 grows it to 16 under load, which in a long-lived worker or
// scheduler is mostly garbage held as memory. templates/project/Dockerfile runs `node` with the same flag;
// the benchmarks read it from this line (docs/benchmarks.md, "Memory").
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
// The command is done (a failure exits inside execute). Exit once its output is written rather than after
// Node has freed its whole heap: that took tens of milliseconds of CPU, just when a trigger's run starts.
const written = (s) =>
  s.writableLength === 0 || s.destroyed
    ? null
    : new Promise((resolve) => ['drain', 'close', 'error'].forEach((e) => s.once(e, resolve)));
await Promise.all([written(process.stdout), written(process.stderr)]);
process.exit();
