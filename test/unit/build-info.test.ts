import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { BUILD_INFO, healthBody, packageVersion } from '../../shared/build-info.ts';
import { createMetricsRegistry } from '../../shared/metrics.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

describe('build info', () => {
  const root = mkdtempSync(join(tmpdir(), 'sb-build-info-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const file = (path: string, text: string) => {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
    return pathToFileURL(join(root, path));
  };

  it("is package.json's version and this Node's, read from source", () => {
    expect(BUILD_INFO).toEqual({ version: pkg.version, node: process.version });
  });

  it('finds /app/package.json from the compiled /app/dist/shared/ (the Docker image), and skips other packages', () => {
    file('app/package.json', JSON.stringify({ name: 'switchboard', version: '9.8.7', type: 'module' }));
    file('app/dist/package.json', JSON.stringify({ name: 'something-else', version: '1.0.0' }));
    expect(packageVersion(file('app/dist/shared/build-info.js', ''))).toBe('9.8.7');
    expect(packageVersion(file('app/shared/build-info.ts', ''))).toBe('9.8.7');
  });

  it('says unknown where no package.json of Switchboard is above it', () => {
    expect(packageVersion(file('elsewhere/shared/build-info.js', ''))).toBe('unknown');
  });

  it('/healthz body: alive, the service and its build, the process that answered, `ok` kept for older probes', () => {
    expect(healthBody('gateway')).toEqual({
      ok: true,
      status: 'ok',
      service: 'gateway',
      version: pkg.version,
      node: process.version,
      pid: process.pid,
    });
  });

  it('every registry has sb_build_info{version,node_version,service} = 1', async () => {
    const text = await createMetricsRegistry('selector').metrics();
    expect(text).toContain(
      `sb_build_info{version="${pkg.version}",node_version="${process.version}",service="selector"} 1`,
    );
  });
});
