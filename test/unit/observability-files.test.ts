import { describe, expect, it } from 'vitest';
import { argv, type ComposeFile, parseYaml, read } from '../support/compose.ts';
import { exportedMetrics, exprProblems, exprShape, keptLabels } from '../support/promql.ts';

/**
 * The compose observability files (deploy/): Prometheus's alert rules and Grafana's provisioned
 * datasource and dashboard. They parse, Compose mounts them where they are read, and every
 * expression selects only metrics and labels the services export (a structural check of the
 * PromQL, test/support/promql.ts; promtool itself runs in prometheus-rules.test.ts).
 */

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: { expr: string; legendFormat?: string; refId: string; datasource?: { uid: string } }[];
}

const compose = parseYaml('docker-compose.yml') as ComposeFile;
const exported = exportedMetrics();
const volumesOf = (service: string) =>
  (compose.services[service]!.volumes ?? []).map((v) =>
    typeof v === 'string' ? v.split(':').slice(0, 2) : [v.source, v.target],
  );
/** Where Compose puts a repository path inside a service: the container path, or undefined. */
function mountedAt(service: string, path: string): string | undefined {
  for (const [source, target] of volumesOf(service)) {
    const from = source!.replace(/^\.\//, '').replace(/\/$/, '');
    if (path === from) return target;
    if (path.startsWith(`${from}/`)) return `${target}/${path.slice(from.length + 1)}`;
  }
  return undefined;
}

const prometheus = parseYaml('deploy/prometheus.yml') as { rule_files?: string[] };
const rules = parseYaml('deploy/prometheus-rules.yml') as { groups: { name: string; rules: Rule[] }[] };
const alerts = rules.groups.flatMap((g) => g.rules);
const dashboard = JSON.parse(read('deploy/grafana/dashboards/switchboard.json')) as {
  uid: string;
  title: string;
  panels: Panel[];
};
const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p, ...t })));
const datasources = parseYaml('deploy/grafana/provisioning/datasources/prometheus.yml') as {
  datasources: { name: string; uid: string; type: string; url: string }[];
};
const providers = parseYaml('deploy/grafana/provisioning/dashboards/switchboard.yml') as {
  providers: { name: string; type: string; options: { path: string } }[];
};

describe('the PromQL check itself', () => {
  it('finds metrics, matchers and grouping labels, and refuses what does not exist', () => {
    const shape = exprShape(
      'histogram_quantile(0.99, sum by (le) (rate(sb_x_bucket{a="}", b=~"y"}[$__rate_interval]))) > 1e-3 or vector(0)',
    );
    expect(shape.metrics).toEqual(['sb_x_bucket']);
    expect(shape.matchers).toEqual([
      { metric: 'sb_x_bucket', label: 'a' },
      { metric: 'sb_x_bucket', label: 'b' },
    ]);
    expect(shape.grouping).toEqual([{ kind: 'by', labels: ['le'] }]);
    expect(() => exprShape('sum(rate(sb_jobs_total[5m])')).toThrow(/unclosed/);
    expect(exprProblems('max by (pool) (sb_pool_ready_nodes)', exported)).toEqual([]);
    expect(exprProblems('sum(sb_jobs_totl)', exported)).toEqual([
      'sb_jobs_totl is not a metric any service exports',
    ]);
    expect(exprProblems('sum(sb_jobs_total{status="x"})', exported)).toEqual([
      'sb_jobs_total has no label status',
    ]);
    expect(exprProblems('sum by (pool) (sb_slots)', exported)).toEqual([
      'by (pool): sb_slots has no label pool',
    ]);
    expect(exprProblems('rate(sb_selection_duration_seconds_bucket[1m])', exported)).toEqual([]);
    expect(exprProblems('sb_selection_duration_seconds_bucket{le="1"}', exported)).toEqual([]);
  });
});

describe('deploy/prometheus-rules.yml', () => {
  it('is the rule file Prometheus loads: named in prometheus.yml, mounted there by Compose', () => {
    expect(prometheus.rule_files).toEqual([mountedAt('prometheus', 'deploy/prometheus-rules.yml')]);
    expect(argv(compose.services['prometheus']!.command)).toContain(
      `--config.file=${mountedAt('prometheus', 'deploy/prometheus.yml')}`,
    );
  });

  it('every rule is a well-formed alert: unique name, duration, severity, summary', () => {
    expect(alerts.length).toBeGreaterThan(0);
    const names = alerts.map((r) => r.alert);
    expect(new Set(names).size, 'unique alert names').toBe(names.length);
    for (const rule of alerts) {
      expect(rule.alert, JSON.stringify(rule)).toMatch(/^Switchboard[A-Z]\w+$/);
      expect(rule.for ?? '5m', `${rule.alert} for`).toMatch(/^\d+[smh]$/);
      expect(['critical', 'warning'], `${rule.alert} severity`).toContain(rule.labels?.['severity']);
      expect(rule.annotations?.['summary'], `${rule.alert} summary`).toBeTruthy();
    }
  });

  it('every expression selects only metrics and labels the services export', () => {
    for (const rule of alerts) expect(exprProblems(rule.expr, exported), rule.alert).toEqual([]);
  });

  it('README "Dashboards and alerts" lists exactly these alerts', () => {
    const text = read('README.md').split('### Dashboards and alerts')[1]!.split('\n## ')[0]!;
    const listed = [...text.matchAll(/^\| `(Switchboard\w+)`/gm)].map((m) => m[1]);
    expect(listed).toEqual(alerts.map((r) => r.alert));
  });

  it('annotations name only labels the expression keeps', () => {
    for (const rule of alerts) {
      const text = Object.values(rule.annotations ?? {}).join(' ');
      for (const [, label] of text.matchAll(/\$labels\.(\w+)/g))
        expect(keptLabels(rule.expr), `${rule.alert} annotation $labels.${label}`).toContain(label);
    }
  });

  it('covers what an operator must hear of: a pair without ready nodes, staleness, heartbeat p99, failing jobs', () => {
    const watching = (metric: string) => alerts.filter((r) => exprShape(r.expr).metrics.includes(metric));
    expect(watching('sb_pool_ready_nodes').map((r) => r.expr)).toContainEqual(
      expect.stringMatching(/by \(pool\)[^=]*== 0/),
    );
    expect(watching('sb_replica_lag_seconds_bucket')).toHaveLength(1);
    expect(watching('sb_heartbeat_duration_seconds_bucket')[0]?.expr).toMatch(/histogram_quantile\(0\.99/);
    expect(watching('sb_job_results_total')[0]?.expr).toMatch(/status="failed"/);
  });
});

describe('Grafana provisioning', () => {
  it('the datasource is the compose Prometheus, on the port it listens on', () => {
    expect(mountedAt('grafana', 'deploy/grafana/provisioning/datasources/prometheus.yml')).toBe(
      '/etc/grafana/provisioning/datasources/prometheus.yml',
    );
    const [source] = datasources.datasources;
    expect(datasources.datasources).toHaveLength(1);
    expect(source!.type).toBe('prometheus');
    const url = new URL(source!.url);
    expect(compose.services[url.hostname], `${url.hostname} is a compose service`).toBeDefined();
    expect(url.port).toBe('9090');
    const published = (compose.services['prometheus']!.ports ?? []).map(String);
    expect(published.some((p) => p.endsWith(':9090:9090'))).toBe(true);
  });

  it('the dashboard provider reads the directory Compose mounts the dashboard JSON in', () => {
    expect(mountedAt('grafana', 'deploy/grafana/provisioning/dashboards/switchboard.yml')).toBe(
      '/etc/grafana/provisioning/dashboards/switchboard.yml',
    );
    const [provider] = providers.providers;
    expect(provider!.type).toBe('file');
    expect(mountedAt('grafana', 'deploy/grafana/dashboards/switchboard.json')).toBe(
      `${provider!.options.path}/switchboard.json`,
    );
  });
});

describe('deploy/grafana/dashboards/switchboard.json', () => {
  const uid = datasources.datasources[0]!.uid;

  it('has unique panel ids, panels inside the 24-column grid that do not overlap', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const { title, gridPos: g } of dashboard.panels) {
      expect(g.x + g.w, `${title} width`).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++)
        for (let y = g.y; y < g.y + g.h; y++) {
          expect(cells.has(`${x},${y}`), `${title} overlaps another panel at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
    }
  });

  it('every query uses the provisioned datasource and selects only metrics and labels the services export', () => {
    expect(queries.length).toBeGreaterThan(10);
    for (const q of queries) {
      expect(q.datasource?.uid ?? q.panel.datasource?.uid, `${q.panel.title} ${q.refId}`).toBe(uid);
      expect(exprProblems(q.expr, exported), `${q.panel.title} ${q.refId}: ${q.expr}`).toEqual([]);
    }
  });

  it('legends name only labels the query keeps', () => {
    for (const q of queries)
      for (const [, label] of (q.legendFormat ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g))
        expect(keptLabels(q.expr), `${q.panel.title}: legend {{${label}}} of ${q.expr}`).toContain(label);
  });

  it('shows the fleet, slots, heartbeats, jobs, latencies, staleness, conflicts and queues', () => {
    const shown = new Set(queries.flatMap((q) => exprShape(q.expr).metrics));
    for (const metric of [
      'sb_nodes',
      'sb_slots',
      'sb_pool_ready_nodes',
      'sb_heartbeats_total',
      'sb_heartbeat_duration_seconds_bucket',
      'sb_jobs_total',
      'sb_job_results_total',
      'sb_job_request_duration_seconds_bucket',
      'sb_selection_duration_seconds_bucket',
      'sb_replica_lag_seconds_bucket',
      'sb_snapshot_lag_seconds_bucket',
      'sb_reservation_conflicts_total',
      'sb_queue_jobs',
    ])
      expect(shown, metric).toContain(metric);
  });

  it('the fleet gauges, exported alike by every selector, are never summed', () => {
    for (const q of queries)
      for (const metric of [
        'sb_nodes',
        'sb_slots',
        'sb_pools',
        'sb_pool_ready_nodes',
        'sb_nodes_unavailable',
      ])
        if (exprShape(q.expr).metrics.includes(metric))
          expect(q.expr, `${q.panel.title}`).not.toMatch(/\bsum\b/);
  });
});
