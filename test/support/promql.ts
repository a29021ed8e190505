/**
 * A structural reading of PromQL, enough to hold the provisioned dashboard and the alert rules
 * (deploy/) to the metrics the code registers — promtool is not installed here. It finds the
 * metric names an expression selects, the labels its matchers and `by`/`without` clauses name,
 * and checks that brackets and quotes balance. It is not a parser: an expression it accepts may
 * still be refused by Prometheus, but a misspelt metric or label cannot pass.
 */
import { Registry } from 'prom-client';
import { createMetricsRegistry } from '../../shared/metrics.ts';
import { quarantineCounter } from '../../shared/quarantine.ts';
import { createGatewayMetrics } from '../../services/gateway/gateway-metrics.ts';
import { createSelectorMetrics } from '../../services/selector/selector-metrics.ts';
import { createWorkerMetrics, registerQueueDepths } from '../../services/worker/worker-metrics.ts';

/** Labels Prometheus adds to every scraped series, and the one createMetricsRegistry sets. */
const TARGET_LABELS = ['job', 'instance', 'service'];

/** Every metric any service exports, with its label names (histograms as their _bucket/_sum/_count). */
export function exportedMetrics(): Map<string, Set<string>> {
  const registry = new Registry();
  createGatewayMetrics(registry);
  createWorkerMetrics(registry);
  registerQueueDepths(registry, {});
  createSelectorMetrics(registry);
  quarantineCounter(registry);
  const metrics = [
    ...registry.getMetricsAsArray(),
    ...createMetricsRegistry('promql-test').getMetricsAsArray(),
  ];
  const out = new Map<string, Set<string>>();
  for (const m of metrics) {
    const labels = new Set([
      ...((m as unknown as { labelNames?: string[] }).labelNames ?? []),
      ...TARGET_LABELS,
    ]);
    const type = String((m as unknown as { type?: unknown }).type);
    if (type === 'histogram') {
      out.set(`${m.name}_bucket`, new Set([...labels, 'le']));
      out.set(`${m.name}_sum`, labels);
      out.set(`${m.name}_count`, labels);
    } else if (type === 'summary') {
      out.set(m.name, new Set([...labels, 'quantile']));
      out.set(`${m.name}_sum`, labels);
      out.set(`${m.name}_count`, labels);
    } else out.set(m.name, labels);
  }
  return out;
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'inf',
  'nan',
]);

export interface ExprShape {
  /** Metric names selected (identifiers that are neither functions, keywords nor labels). */
  metrics: string[];
  /** Label matchers, per metric: `name{label="v"}`. */
  matchers: { metric: string; label: string }[];
  /** Labels of every `by (…)` / `without (…)` clause. */
  grouping: { kind: 'by' | 'without'; labels: string[] }[];
}

/** Throws when brackets or quotes do not balance; else the metrics, matchers and grouping labels. */
export function exprShape(expr: string): ExprShape {
  const stack: string[] = [];
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  let quote: string | null = null;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') quote = c;
    else if ('([{'.includes(c)) stack.push(c);
    else if (c in pairs && stack.pop() !== pairs[c]) throw new Error(`unbalanced ${c} at ${i} in ${expr}`);
  }
  if (quote || stack.length > 0) throw new Error(`unclosed ${quote ?? stack.at(-1)} in ${expr}`);

  const matchers: ExprShape['matchers'] = [];
  const grouping: ExprShape['grouping'] = [];
  let text = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\[[^\]]*\]/g, ' ') // range selectors and subqueries: [5m], [$__rate_interval]
    .replace(/\$__\w+|\$\w+/g, ' ');
  text = text.replace(
    /([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}/g,
    (_m, metric: string | undefined, body: string) => {
      for (const [, label] of body.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g))
        if (label !== '__name__') matchers.push({ metric: metric ?? '', label: label! });
      return ` ${metric ?? ''} `;
    },
  );
  text = text.replace(
    /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g,
    (_m, kind: string, body: string) => {
      const labels = body
        .split(',')
        .map((l) => l.trim())
        .filter(Boolean);
      if (kind === 'by' || kind === 'without') grouping.push({ kind, labels });
      return ' ';
    },
  );
  const metrics: string[] = [];
  for (const m of text.matchAll(/[a-zA-Z_:][\w:]*/g)) {
    const word = m[0];
    const after = text.slice(m.index + word.length).trimStart();
    if (after.startsWith('(') || KEYWORDS.has(word.toLowerCase())) continue;
    if (/[\d.]/.test(text[m.index - 1] ?? '')) continue; // the exponent of a number: 1e-9
    metrics.push(word);
  }
  return { metrics, matchers, grouping };
}

/**
 * The problems of an expression against the exported metrics: unknown metrics, matchers on
 * labels the metric does not have, `by` labels that some selected metric lacks.
 */
export function exprProblems(expr: string, exported: Map<string, Set<string>>): string[] {
  let shape: ExprShape;
  try {
    shape = exprShape(expr);
  } catch (err) {
    return [(err as Error).message];
  }
  const problems: string[] = [];
  if (shape.metrics.length === 0) problems.push(`selects no metric: ${expr}`);
  for (const metric of shape.metrics)
    if (!exported.has(metric)) problems.push(`${metric} is not a metric any service exports`);
  for (const { metric, label } of shape.matchers) {
    const labels = exported.get(metric);
    if (labels && !labels.has(label)) problems.push(`${metric} has no label ${label}`);
  }
  for (const { kind, labels } of shape.grouping)
    for (const label of labels)
      for (const metric of shape.metrics) {
        const known = exported.get(metric);
        if (kind === 'by' && known && !known.has(label))
          problems.push(`by (${label}): ${metric} has no label ${label}`);
      }
  return problems;
}

/** The labels a result of the expression keeps: those of its outermost `by` clause (else null: unknown). */
export function keptLabels(expr: string): string[] | null {
  const first = exprShape(expr).grouping[0];
  return first?.kind === 'by' ? first.labels : null;
}
