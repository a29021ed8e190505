import { api, type Breakdown, type Explanation } from '../api.ts';
import { h, table } from '../dom.ts';
import { fill, type View } from './view.ts';

/** One figure as text: lists joined, null as –. */
function figure(value: unknown): string {
  if (value === null || value === undefined) return '–';
  if (Array.isArray(value)) return value.length === 0 ? '(none)' : value.join(', ');
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** A breakdown: counts per reason, with sample node ids. */
export function breakdownTable(b: Breakdown): HTMLElement {
  const rows = Object.entries(b.rejected).sort((x, y) => y[1] - x[1]);
  return h(
    'div',
    { class: 'breakdown' },
    h(
      'p',
      {},
      `${b.eligible} eligible of ${b.total_nodes} nodes (${b.candidates} passed the language checks)`,
    ),
    table(
      ['reason', 'nodes', 'samples'],
      rows,
      ([reason, count]) => [reason, count, (b.samples[reason] ?? []).join(', ') || '–'],
      {
        rowId: ([reason]) => reason,
        empty: 'no node rejected',
      },
    ),
  );
}

/** The answer of POST /v1/explain. */
export function explanation(e: Explanation): HTMLElement {
  const n = e.node;
  const named = n
    ? h(
        'div',
        {
          class: `why-node ${n.eligible ? 'ok' : 'no'}`,
          'data-reason': n.reason ?? (n.eligible ? 'eligible' : 'unknown'),
        },
        h('h3', {}, `Why not ${n.node_id}?`),
        h('p', { class: 'reason' }, n.known ? (n.reason ?? 'eligible') : 'not in the snapshot'),
        h('p', {}, n.text),
        Object.keys(n.figures).length > 0
          ? h(
              'table',
              { class: 'figures' },
              h(
                'tbody',
                {},
                ...Object.entries(n.figures).map(([k, v]) =>
                  h('tr', {}, h('th', {}, k), h('td', {}, figure(v))),
                ),
              ),
            )
          : null,
      )
    : null;
  const groups = Object.entries(e.by_reason).sort((a, b) => b[1].count - a[1].count);
  return h(
    'div',
    { class: 'explanation' },
    h(
      'p',
      { class: 'summary' },
      e.message,
      e.chosen ? ` — the replay chooses ${e.chosen} (${e.choice})` : '',
    ),
    e.tried.length > 0
      ? h(
          'p',
          { class: 'muted' },
          `tried by its attempts: ${e.tried.join(', ')}${e.excluded_tried ? ' (excluded, as a failover would)' : ''}`,
        )
      : null,
    named,
    h('h3', {}, 'Every node, under its first failing reason'),
    table(
      ['reason', 'nodes', 'ids'],
      groups,
      ([reason, g]) => [reason, g.count, g.nodes.join(', ') + (g.count > g.nodes.length ? ', …' : '')],
      { rowId: ([reason]) => reason },
    ),
  );
}

/** The why-not form: for a job id, or a request typed in, and a node id. */
export function whyForm(initial: { jobId?: string; nodeId?: string; request?: string }): HTMLElement {
  const jobId = h('input', { name: 'job_id', placeholder: 'job id', value: initial.jobId ?? '' });
  const request = h('textarea', { name: 'request', rows: 4, spellcheck: 'false' }, initial.request ?? '');
  const nodeId = h('input', {
    name: 'node_id',
    placeholder: 'node id (optional)',
    value: initial.nodeId ?? '',
  });
  const excludeTried = h('input', { type: 'checkbox', name: 'exclude_tried' });
  const out = h('div', { class: 'why-answer', 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'why', id: 'why-form' },
    initial.request !== undefined ? h('label', {}, 'Request (JSON, as for POST /v1/jobs) ', request) : null,
    h('label', {}, 'Job ', jobId),
    h('label', {}, 'Why not node ', nodeId),
    h('label', { class: 'check' }, excludeTried, ' as its failover would (exclude the nodes it tried)'),
    h('button', { type: 'submit' }, 'Explain'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void (async () => {
      fill(out, h('p', { class: 'muted' }, 'replaying…'));
      try {
        const body: Record<string, unknown> = {};
        if (jobId.value.trim() !== '') {
          body['job_id'] = jobId.value.trim();
          body['exclude_tried'] = excludeTried.checked;
        } else body['request'] = JSON.parse(request.value) as unknown;
        if (nodeId.value.trim() !== '') body['node_id'] = nodeId.value.trim();
        fill(out, explanation(await api<Explanation>('/v1/explain', { method: 'POST', body })));
      } catch (err) {
        fill(out, h('p', { class: 'error' }, (err as Error).message));
      }
    })();
  });
  return h('div', {}, form, out);
}

/** #/why: a request typed in (or a job id) against the current snapshot. */
export function whyView(params: URLSearchParams): View {
  return {
    el: h(
      'section',
      { id: 'why' },
      h('h1', {}, 'Why not node X?'),
      h('p', { class: 'muted' }, 'The selection replayed against this selector’s snapshot as it is now.'),
      whyForm({
        jobId: params.get('job') ?? '',
        nodeId: params.get('node') ?? '',
        request: params.get('request') ?? '{"src_lang": "zh", "tgt_lang": "en"}',
      }),
    ),
    refresh: () => Promise.resolve(),
  };
}
