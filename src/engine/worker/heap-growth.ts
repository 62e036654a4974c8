/**
 * The worker process's old generation grows by 20% past what its last full collection kept, not by V8's
 * default factor (up to 4 for a small heap): under load a worker promotes many short-lived objects (a
 * try's messages, rows and promises), and the default lets them pile up as memory until the next full
 * collection. V8 reads this flag at each collection, so it can be set once the process runs (unlike the
 * young generation's size: bin/run.js). Process-wide: a scheduler in the same process gets it too.
 */
import v8 from 'node:v8';

export function limitOldGenerationGrowth() {
  v8.setFlagsFromString('--heap-growing-percent=20');
}
