// Bundles the dashboard's pages (src/web/ui, preact) into dist/web/assets with esbuild: one file, no CDN,
// so the pages work with no internet. Run by `npm run build`.
import { build } from 'esbuild';
import { cpSync, mkdirSync } from 'node:fs';

mkdirSync('dist/web/assets', { recursive: true });
await build({
  entryPoints: ['src/web/ui/app.tsx'],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outfile: 'dist/web/assets/app.js',
  logLevel: 'warning',
});
cpSync('src/web/ui/app.css', 'dist/web/assets/app.css');
