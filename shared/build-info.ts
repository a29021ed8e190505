import { readFileSync } from 'node:fs';

/**
 * What is running: Switchboard's version (package.json) and the Node.js version. The one
 * place that knows both; the `listening` log line, `GET /healthz` and the `sb_build_info`
 * metric read them from here.
 */

export interface BuildInfo {
  /** `version` of Switchboard's package.json, or `unknown` when none is found. */
  version: string;
  /** `process.version`, e.g. `v24.1.0`. */
  node: string;
}

const PACKAGE_NAME = 'switchboard';

/**
 * The version in the package.json of the nearest directory above `moduleUrl` that holds
 * Switchboard's: `<repo>/package.json` for `<repo>/shared/build-info.ts` (run from source),
 * `/app/package.json` for `/app/dist/shared/build-info.js` (the compiled image).
 */
export function packageVersion(moduleUrl: string | URL): string {
  for (let up = new URL('../', moduleUrl); ; up = new URL('../', up)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', up), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // none here (or unreadable): look one directory up
    }
    if (up.pathname === '/') return 'unknown';
  }
}

/** Read once, when the first module asks. */
export const BUILD_INFO: Readonly<BuildInfo> = Object.freeze({
  version: packageVersion(import.meta.url),
  node: process.version,
});

/** The body of `GET /healthz`: alive, which service, which build. `ok` is kept for older probes. */
export function healthBody(service: string): Record<string, unknown> {
  // pid: which process of a multi-process service answered (SB_GATEWAY_PROCESSES)
  return {
    ok: true,
    status: 'ok',
    service,
    version: BUILD_INFO.version,
    node: BUILD_INFO.node,
    pid: process.pid,
  };
}
