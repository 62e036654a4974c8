/**
 * A custom operator shared by the DAG files of a project: waits until a file exists (a "sensor").
 *
 *   import { fileSensor } from '../plugins/file_sensor.js';
 *   fileSensor(d, 'wait_for_export', { path: '/data/{{ ds }}/export.csv', pokeInterval: 5000, timeout: '1h' });
 *
 * The path is templated; the task's output is the path found. Bound the wait with the task's `timeout`.
 */
import { access } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { defineOperator } from 'airtasks';

export interface FileSensorArgs {
  /** The file to wait for; templated ({{ conf.x }}, {{ ds }}, {{ run_id }}). */
  path: string;
  /** Milliseconds between two looks (default 1000). */
  pokeInterval?: number;
}

export const fileSensor = defineOperator<FileSensorArgs, string>({
  name: 'file_sensor',
  validate(args) {
    if (typeof args.path !== 'string' || args.path.trim() === '') throw new Error('path is required');
    if (args.pokeInterval !== undefined && !(args.pokeInterval > 0)) {
      throw new Error('pokeInterval must be a positive number of milliseconds');
    }
  },
  async run(ctx) {
    const file = ctx.render(ctx.args.path);
    for (let look = 1; ; look++) {
      try {
        await access(file);
        ctx.log(`found ${file} (look ${look})`);
        return file;
      } catch {
        if (look === 1) ctx.log(`waiting for ${file}`);
      }
      await sleep(ctx.args.pokeInterval ?? 1000, undefined, { signal: ctx.signal });
    }
  },
});
