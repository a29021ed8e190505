import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { build } from 'vite';

/**
 * What the browser tests (test/browser/) share: Debian's chromium driven by playwright-core
 * (browsers are never downloaded), and the console built by Vite into a directory of the test's
 * own (never the repository's dist/).
 */

/** CHROMIUM_PATH, else Debian's package. */
export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/**
 * Whether the browser tests can run. Outside CI a missing chromium skips them with a message;
 * under CI (`CI` set) it is a failure: `.ci/run` installs the package.
 */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env['CI']) {
    throw new Error(
      `no chromium at ${CHROMIUM}: under CI the browser tests must run (.ci/run installs Debian's chromium)`,
    );
  }
  console.warn(
    `test/browser: SKIPPED — no chromium binary at ${CHROMIUM} (Debian/Ubuntu: sudo apt-get install -y chromium; or set CHROMIUM_PATH)`,
  );
  return false;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

/** Builds the console (vite.config.ts) into a fresh temporary directory; returns it. */
export async function buildConsole(): Promise<string> {
  const outDir = mkdtempSync(join(tmpdir(), 'sb-console-build-'));
  await build({
    configFile: fileURLToPath(new URL('../../vite.config.ts', import.meta.url)),
    build: { outDir, emptyOutDir: true },
    logLevel: 'warn',
  });
  return outDir;
}

/** Where screenshots go: test-results/console/ (gitignored), kept as artifacts. */
export const SCREENSHOTS = fileURLToPath(new URL('../../test-results/console/', import.meta.url));
