import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

/**
 * Settings every project repeats. Inline projects do not inherit the root `test` options
 * (`extends: false`; Vitest 5 inherits by default): an inheriting project would also inherit the
 * root `include` (every project would run every file) and `globalSetup` (run once per project,
 * one set of Redis servers each). The root globalSetup runs once, and its `provide`d values reach
 * every project through `inject()`.
 */
const shared = {
  testTimeout: 30_000,
  hookTimeout: 60_000,
  pool: 'forks',
  // a gateway process a test starts is one process unless the test asks for more (its default: every core)
  env: { SB_GATEWAY_PROCESSES: '1' },
} as const;

function project(name: string, overrides: { testTimeout?: number } = {}): TestProjectInlineConfiguration {
  return {
    extends: false,
    test: { ...shared, ...overrides, name, include: [`test/${name}/**/*.test.ts`] },
  };
}

export default defineConfig({
  test: {
    ...shared,
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/global-setup.ts'],
    projects: [
      project('unit'),
      project('integration'),
      project('e2e'),
      project('cluster'),
      // a fault case runs traffic, the fault and the settling of every job: ~10-20 s, more on a busy machine
      project('faults', { testTimeout: 120_000 }),
      // the console in Debian's chromium (playwright-core); skipped with a message without it, outside CI
      project('browser', { testTimeout: 60_000 }),
    ],
  },
});
