import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { ERROR_CATALOG } from '../../shared/errors.ts';
import { KeyBuilder } from '../../shared/keys.ts';
import { createMetricsRegistry } from '../../shared/metrics.ts';
import { createGatewayMetrics } from '../../services/gateway/gateway-metrics.ts';
import { createSelectorMetrics } from '../../services/selector/selector-metrics.ts';
import { REJECT_REASONS } from '../../services/selector/reject-reasons.ts';
import { createWorkerMetrics, registerQueueDepths } from '../../services/worker/worker-metrics.ts';
import { codeSpan, readRepoFile, repoFiles, ROOT, section, tableRows } from '../support/markdown.ts';

/**
 * The docs, held to the code: each test names what it compares, and fails on a disagreement
 * in either direction where both directions are stated.
 */

const DOCS = [
  'README.md',
  'docs/ARCHITECTURE.md',
  'docs/PROTOCOL.md',
  'docs/STYLE.md',
  'bench/README.md',
  'agent/README.md',
];
const read = (path: string) => readRepoFile(path);
const SOURCE_DIRS = ['services', 'shared', 'scripts', 'agent', 'bench'];

describe('Lua script names', () => {
  const scripts = readdirSync(new URL('lua/', ROOT)).filter((f) => f.endsWith('.lua'));
  /** Named in the docs but not ours: BullMQ's own script, cited in STYLE.md as the model. */
  const FOREIGN = new Set(['addStandardJob-9.lua']);
  const LUA_NAME = /\b[a-z][A-Za-z]+-\d+\+?\.lua\b/g;

  it('every script file name the docs and the code comments mention exists in lua/', () => {
    const texts = [...DOCS, ...SOURCE_DIRS.flatMap((dir) => repoFiles(dir, '.ts'))];
    for (const path of texts) {
      for (const [name] of read(path).matchAll(LUA_NAME)) {
        if (!FOREIGN.has(name)) expect(scripts, `${path} names ${name}`).toContain(name);
      }
    }
  });

  it('ARCHITECTURE.md names every script in lua/', () => {
    expect(scripts.length).toBeGreaterThan(10);
    const architecture = read('docs/ARCHITECTURE.md');
    for (const name of scripts) expect(architecture, name).toContain(`\`${name}\``);
  });
});

describe('metric names', () => {
  /** Every sb_* metric the services register: from their factories, and from `name: 'sb_…'` in the source. */
  function metricsInCode(): Set<string> {
    const registry = new Registry();
    createGatewayMetrics(registry);
    createWorkerMetrics(registry);
    registerQueueDepths(registry, {});
    createSelectorMetrics(registry);
    const names = new Set(registry.getMetricsAsArray().map((m) => m.name));
    for (const m of createMetricsRegistry('docs-test').getMetricsAsArray()) names.add(m.name);
    for (const path of ['services', 'shared'].flatMap((dir) => repoFiles(dir, '.ts'))) {
      for (const match of read(path).matchAll(/name:\s*['"](sb_[a-z0-9_]+)['"]/g)) names.add(match[1]!);
    }
    return new Set([...names].filter((n) => n.startsWith('sb_')));
  }
  const code = metricsInCode();
  /** `sb_x_bucket` / `_count` / `_sum` are series of the histogram `sb_x`. */
  const metricOf = (series: string) =>
    code.has(series) ? series : series.replace(/_(bucket|count|sum)$/, '');

  it('finds the metrics in the code (sanity)', () => {
    for (const name of ['sb_heartbeats_total', 'sb_snapshot_flushes_total', 'sb_selection_duration_seconds'])
      expect(code).toContain(name);
  });

  it('every sb_* name in README, ARCHITECTURE.md and bench/README.md is a metric of the code', () => {
    for (const path of ['README.md', 'docs/ARCHITECTURE.md', 'bench/README.md']) {
      for (const [series] of read(path).matchAll(/\bsb_[a-z0-9_]*[a-z0-9]\b/g)) {
        expect(code, `${path} mentions ${series}`).toContain(metricOf(series));
      }
    }
  });

  it('README documents every metric the code registers', () => {
    const readme = read('README.md');
    const missing = [...code].filter((name) => !new RegExp(`\`${name}(\\{[^}]*\\})?\``).test(readme));
    expect(missing, 'add them to README (the service sections or "Observing")').toEqual([]);
  });
});

describe('error codes', () => {
  const rows = tableRows(section(read('README.md'), '### Errors'));

  it('the README errors table lists exactly the catalog of shared/errors.ts', () => {
    const documented = rows.map(([code]) => codeSpan(code ?? '') ?? code);
    expect([...documented].sort()).toEqual(Object.keys(ERROR_CATALOG).sort());
  });

  it('the README gives each code the HTTP status of the catalog first', () => {
    for (const [code, http] of rows) {
      const name = codeSpan(code ?? '') as keyof typeof ERROR_CATALOG;
      expect(Number(/\d{3}/.exec(http ?? '')?.[0]), name).toBe(ERROR_CATALOG[name].status);
    }
  });
});

describe('rejection reasons', () => {
  it('ARCHITECTURE.md "Selection" lists services/selector/reject-reasons.ts in its order', () => {
    const text = section(
      read('docs/ARCHITECTURE.md'),
      '## Selection (`selection.ts`: pure, synchronous, no I/O)',
    );
    const listed = [...text.matchAll(/^\d+\. `([a-z_]+)`/gm)].map((m) => m[1]);
    expect(listed).toEqual([...REJECT_REASONS]);
  });

  it('README "Troubleshooting" says what to do about every reason, in that order', () => {
    const text = section(read('README.md'), '### Reading a `NO_AVAILABLE_NODE` breakdown');
    expect(tableRows(text).map(([reason]) => codeSpan(reason ?? ''))).toEqual([...REJECT_REASONS]);
  });
});

describe('Redis keys', () => {
  /** Every key KeyBuilder builds, written as the docs write them (`{sb:s<k>}:node:<node>`). */
  function keysInCode(): Set<string> {
    const keys = new KeyBuilder('sb', 16);
    const placeholders: Record<string, string> = {
      node: '<node>',
      pool: '<pool>',
      inbox: '<node>',
      reservation: '<job>',
    };
    const out = new Set<string>();
    for (const [field, value] of Object.entries(keys.shard(3))) {
      if (field === 'shard' || field === 'tag') continue;
      if (typeof value === 'function') {
        const placeholder = placeholders[field];
        if (!placeholder)
          throw new Error(`ShardKeys.${field}(): add its placeholder here and the key to the docs`);
        out.add((value as (arg: string) => string)(placeholder));
      } else out.add(String(value));
    }
    out.add(keys.job('<job>'));
    out.add(keys.placing(0));
    out.add(keys.jobIndexes(3).recent);
    out.add(keys.jobIndexes(3).failed);
    out.add(keys.openJobs(3));
    out.add(keys.selectorFigures);
    out.add(`${keys.queuePrefix}:<queue>:…`);
    return new Set(
      [...out].map((key) => key.replace(/^\{sb:s3\}/, '{sb:s<k>}').replace(/^\{sb:j\d+\}/, '{sb:j<k>}')),
    );
  }

  it('the ARCHITECTURE.md "Redis layout" table lists exactly the keys shared/keys.ts builds', () => {
    const rows = tableRows(section(read('docs/ARCHITECTURE.md'), '## Redis layout'));
    const documented = rows.map(([key]) => codeSpan(key ?? '') ?? key);
    expect([...documented].sort()).toEqual([...keysInCode()].sort());
  });
});

describe('npm start variables', () => {
  const scripts = repoFiles('scripts', '.ts').map((path) => ({ path, text: read(path) }));
  const read_ = scripts.flatMap(({ text }) =>
    [...text.matchAll(/process\.env(?:\[['"]([A-Z0-9_]+)['"]\]|\.([A-Z0-9_]+))/g)].map((m) => m[1] ?? m[2]!),
  );
  const launcherReads = new Set(read_.filter((name) => name !== 'PATH'));
  const rows = tableRows(section(read('README.md'), '### `npm start`'));

  it('the README "npm start" table lists exactly the variables scripts/ reads', () => {
    expect(launcherReads.size).toBeGreaterThan(3);
    const documented = rows.map(([name]) => codeSpan(name ?? '') ?? name);
    expect([...documented].sort()).toEqual([...launcherReads].sort());
  });

  it('its numeric defaults are the ones scripts/ falls back to', () => {
    for (const [name, def] of rows) {
      const value = codeSpan(def ?? '');
      if (value === null || !/^\d+$/.test(value)) continue;
      const fallback = new RegExp(`process\\.env\\['${codeSpan(name ?? '')}'\\] \\?\\? ${value}\\b`);
      expect(
        scripts.some(({ text }) => fallback.test(text)),
        `${name} defaults to ${value}`,
      ).toBe(true);
    }
  });
});

describe('references in the docs', () => {
  const REPO_PATH =
    /`((?:services|shared|lua|scripts|test|agent|bench|docs|deploy)\/[^`\s<>*]+\.(?:ts|lua|md|yml|json))`/g;

  it('every repository file the docs name in a code span exists', () => {
    for (const path of DOCS) {
      for (const [, file] of read(path).matchAll(REPO_PATH)) {
        expect(existsSync(new URL(file!, ROOT)), `${path} names ${file}`).toBe(true);
      }
    }
  });

  it('every relative Markdown link of the docs points at an existing file', () => {
    for (const path of [...DOCS, 'docs/JOB-API.md']) {
      const base = new URL(path, ROOT);
      for (const [, target] of read(path).matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue; // https:, mailto:
        expect(existsSync(new URL(target!, base)), `${path} links ${target}`).toBe(true);
      }
    }
  });

  it('every section the code and the docs cite by name (ARCHITECTURE.md "Selection") exists', () => {
    const sources = [...SOURCE_DIRS, 'test'].flatMap((dir) => repoFiles(dir, '.ts'));
    const files: Record<string, string> = {
      'ARCHITECTURE.md': 'docs/ARCHITECTURE.md',
      'PROTOCOL.md': 'docs/PROTOCOL.md',
      README: 'README.md',
    };
    let cited = 0;
    for (const path of [...sources, ...DOCS]) {
      for (const [, doc, title] of read(path).matchAll(
        /\b(ARCHITECTURE\.md|PROTOCOL\.md|README),? "([^"]+)"/g,
      )) {
        cited++;
        const headings = read(files[doc!]!)
          .split('\n')
          .filter((line) => /^#{2,4} /.test(line))
          .map((line) => line.replace(/^#+ /, ''));
        const name = title!.replace(/\s+/g, ' ');
        expect(
          headings.some((h) => h.startsWith(name) || h.replaceAll('`', '').startsWith(name)),
          `${path} cites ${doc} "${name}"`,
        ).toBe(true);
      }
    }
    expect(cited).toBeGreaterThan(10);
  });

  it('every test the docs cite by file and title exists with that title', () => {
    let cited = 0;
    for (const path of DOCS) {
      for (const [, file, title] of read(path).matchAll(/`(test\/[^`]+\.test\.ts)`,? \(?"([^"]+)"/g)) {
        cited++;
        const words = title!.replace(/\s+/g, ' '); // a title may wrap in the Markdown source
        expect(read(file!), `${path} cites ${file} "${words}"`).toContain(words);
      }
    }
    expect(cited).toBeGreaterThan(2);
  });
});
