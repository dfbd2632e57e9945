import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/** The web console: `web/` built into `dist/web`, which the Strata server serves at `/` (src/http/console-routes.ts). */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  // No public folder: every asset is imported, hashed and served from /assets/.
  publicDir: false,
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
  },
  server: {
    // `npx vite web` during development: the API comes from a running `strata start` (or `npm start`).
    proxy: { '/v1': 'http://127.0.0.1:7070', '/health': 'http://127.0.0.1:7070' },
  },
});
