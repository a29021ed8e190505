import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The alert rules through Prometheus's own tool (Debian's `prometheus` package ships `promtool`;
 * `.ci/run` installs it when missing): `promtool check rules` parses and type-checks every
 * expression, `promtool test rules` runs deploy/prometheus-rules.test.yml, where each alert fires
 * on a synthetic series that should page and stays quiet on a healthy one. Outside CI a missing
 * promtool skips this with a message (the structural checks of observability-files.test.ts
 * still run); under CI it fails.
 */
const PROMTOOL = process.env['PROMTOOL_PATH'] ?? 'promtool';

function promtoolAvailable(): boolean {
  if (spawnSync(PROMTOOL, ['--version'], { stdio: 'ignore' }).status === 0) return true;
  if (process.env['CI'])
    throw new Error(
      `no ${PROMTOOL}: under CI the alert rules must be checked (.ci/run installs Debian's prometheus)`,
    );
  console.warn(
    `prometheus-rules: SKIPPED — no promtool on PATH (Debian/Ubuntu: sudo apt-get install -y --no-install-recommends prometheus; or set PROMTOOL_PATH)`,
  );
  return false;
}

const promtool = (...args: string[]) => {
  const run = spawnSync(PROMTOOL, args, { encoding: 'utf8' });
  return { status: run.status, out: `${run.stdout}${run.stderr}` };
};

describe.skipIf(!promtoolAvailable())('alert rules, by promtool', () => {
  it('promtool check rules: every rule parses and type-checks', () => {
    const { status, out } = promtool('check', 'rules', 'deploy/prometheus-rules.yml');
    expect(out).toMatch(/SUCCESS: \d+ rules found/);
    expect(status, out).toBe(0);
  });

  it('promtool test rules: every alert fires on its synthetic series and stays quiet on a healthy one', () => {
    const { status, out } = promtool('test', 'rules', 'deploy/prometheus-rules.test.yml');
    expect(status, out).toBe(0);
  });

  it('every alert of the rules file has a test that fires it and one that keeps it quiet', () => {
    const alerts = [...readFileSync('deploy/prometheus-rules.yml', 'utf8').matchAll(/- alert: (\w+)/g)].map(
      (m) => m[1]!,
    );
    const tests = readFileSync('deploy/prometheus-rules.test.yml', 'utf8');
    expect(alerts.length).toBeGreaterThan(0);
    for (const alert of alerts) {
      const blocks = tests.split(/\n(?=\s+- eval_time:)/).filter((b) => b.includes(`alertname: ${alert}\n`));
      expect(
        blocks.some((b) => /exp_alerts:\s*\n\s+- exp_labels/.test(b)),
        `${alert} fires somewhere`,
      ).toBe(true);
      expect(
        blocks.some((b) => /exp_alerts: \[\]/.test(b)),
        `${alert} stays quiet somewhere`,
      ).toBe(true);
    }
  });

  it('a broken rule is refused (the check is real)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-rules-'));
    try {
      const file = join(dir, 'bad.yml');
      writeFileSync(
        file,
        'groups:\n  - name: bad\n    rules:\n      - alert: Broken\n        expr: sum(rate(sb_jobs_total[5m])\n',
      );
      const bad = promtool('check', 'rules', file);
      expect(bad.status).not.toBe(0);
      expect(bad.out).toMatch(/FAILED|unclosed|parse error/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
