import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The console (console/: plain TypeScript, no framework) built into dist/console/, which the
 * selector serves at /console/ (SB_CONSOLE_DIR elsewhere). `npm run build:console`.
 */
export default defineConfig({
  root: fileURLToPath(new URL('./console/', import.meta.url)),
  base: '/console/',
  publicDir: false,
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('./dist/console/', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
  },
});
