import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** scripts/check-lockfile.mjs: the lock `npm ci` must accept on any machine and registry. */
const run = promisify(execFile);
const script = new URL('../../scripts/check-lockfile.mjs', import.meta.url).pathname;
const repo = new URL('../../', import.meta.url).pathname;

interface LockEntry {
  version?: string;
  resolved?: string;
  hasInstallScript?: boolean;
  optionalDependencies?: Record<string, string>;
}
interface Lock {
  packages: Record<string, LockEntry>;
}

async function check(dir: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [script, dir]);
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: e.stdout + e.stderr };
  }
}

describe('package-lock.json', () => {
  let dir: string;
  let pkg: string;
  let lock: Lock;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sb-lock-'));
    pkg = await readFile(join(repo, 'package.json'), 'utf8');
    lock = JSON.parse(await readFile(join(repo, 'package-lock.json'), 'utf8')) as Lock;
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function withLock(mutate: (lock: Lock) => void, pkgText = pkg) {
    const copy = structuredClone(lock);
    mutate(copy);
    await writeFile(join(dir, 'package.json'), pkgText);
    await writeFile(join(dir, 'package-lock.json'), JSON.stringify(copy));
    return check(dir);
  }

  it('the committed lock passes', async () => {
    const { code, output } = await check(repo);
    expect(output).toContain('agrees with package.json');
    expect(code).toBe(0);
  });

  it("keeps every platform's optional packages (the EUSAGE npm ci refusal)", async () => {
    const [path, entry] = Object.entries(lock.packages).find(
      ([p, e]) => p !== '' && Object.keys(e.optionalDependencies ?? {}).length > 1,
    )!;
    const victim = Object.keys(entry.optionalDependencies!).find((n) => lock.packages[`node_modules/${n}`])!;
    const { code, output } = await withLock((l) => delete l.packages[`node_modules/${victim}`]);
    expect(code).toBe(1);
    expect(output).toContain(`${path}: optional dependency ${victim} has no lock entry`);
  });

  it('names no registry', async () => {
    const { code, output } = await withLock((l) => {
      l.packages['node_modules/ws']!.resolved = 'https://mirror.example/ws/-/ws-8.23.1.tgz';
    });
    expect(code).toBe(1);
    expect(output).toContain('node_modules/ws: "resolved" names a registry');
  });

  it('has an allowScripts decision for every install script', async () => {
    const { code, output } = await withLock((l) => {
      l.packages['node_modules/ws']!.hasInstallScript = true;
    });
    expect(code).toBe(1);
    expect(output).toContain('ws: has an install script and no allowScripts decision');
  });

  it('agrees with package.json', async () => {
    const changed = pkg.replace(/"ws": "[^"]+"/, '"ws": "8.0.0"');
    expect(changed).not.toBe(pkg);
    const { code, output } = await withLock(() => undefined, changed);
    expect(code).toBe(1);
    expect(output).toContain('package.json dependencies differ from the lock');
    expect(output).toContain('ws: package.json pins 8.0.0');
  });
});
