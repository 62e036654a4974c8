// Copies non-TypeScript assets (SQL migrations) next to the compiled code.
import { cpSync } from 'node:fs';

cpSync('src/engine/store/migrations', 'dist/engine/store/migrations', { recursive: true });
