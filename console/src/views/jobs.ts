import { api, type JobDetail, type JobSummary } from '../api.ts';
import { ago, h, table, time } from '../dom.ts';
import { fill, type View } from './view.ts';
import { breakdownTable, whyForm } from './why.ts';

function jobTable(jobs: JobSummary[], empty: string, failed: boolean): HTMLElement {
  return table(
    failed ? ['job', 'pair', 'node', 'error', 'failed'] : ['job', 'status', 'pair', 'node', 'created'],
    jobs,
    (j) =>
      failed
        ? [
            h('a', { href: `#/jobs/${encodeURIComponent(j.job_id)}` }, j.job_id),
            j.pair ?? '–',
            j.node_id ?? '–',
            j.error?.code ?? '–',
            ago(j.finished_at),
          ]
        : [
            h('a', { href: `#/jobs/${encodeURIComponent(j.job_id)}` }, j.job_id),
            h('span', { class: `badge ${j.status}` }, j.status),
            j.pair ?? '–',
            j.node_id ?? '–',
            ago(j.created_at),
          ],
    {
      rowId: (j) => j.job_id,
      onRow: (j) => (location.hash = `#/jobs/${encodeURIComponent(j.job_id)}`),
      empty,
    },
  );
}

/** #/jobs: recent and failed jobs. */
export function jobsView(): View {
  const recent = h('div', { id: 'recent-jobs' });
  const failed = h('div', { id: 'failed-jobs' });
  return {
    el: h(
      'section',
      { id: 'jobs' },
      h('h1', {}, 'Jobs'),
      h('h2', {}, 'Failed'),
      failed,
      h('h2', {}, 'Recent'),
      recent,
    ),
    refresh: async () => {
      const [r, f] = await Promise.all([
        api<{ jobs: JobSummary[] }>('/v1/jobs?list=recent&limit=50'),
        api<{ jobs: JobSummary[] }>('/v1/jobs?list=failed&limit=50'),
      ]);
      fill(recent, jobTable(r.jobs, 'no jobs yet', false));
      fill(failed, jobTable(f.jobs, 'no failed jobs', true));
    },
  };
}

function json(value: unknown): HTMLElement {
  return h('pre', {}, JSON.stringify(value, null, 2));
}

/** #/jobs/<id>: attempts, placement breakdown with samples, partial and final results, trace, why-not. */
export function jobView(id: string): View {
  const slot = h('div');
  return {
    el: h(
      'section',
      { id: 'job' },
      h('p', {}, h('a', { href: '#/jobs' }, '← jobs')),
      h('h1', {}, 'Job ', h('code', {}, id)),
      slot,
      h('h2', {}, 'Why not node X?'),
      whyForm({ jobId: id }),
    ),
    refresh: async () => {
      const d = await api<JobDetail>(`/v1/console/jobs/${encodeURIComponent(id)}`);
      const j = d.job;
      fill(
        slot,
        h(
          'dl',
          { class: 'facts' },
          h('dt', {}, 'status'),
          h('dd', { 'data-fact': 'status' }, h('span', { class: `badge ${j.status}` }, j.status)),
          h('dt', {}, 'node'),
          h(
            'dd',
            {},
            j.node_id ? h('a', { href: `#/nodes/${encodeURIComponent(j.node_id)}` }, j.node_id) : '–',
          ),
          h('dt', {}, 'pair'),
          h(
            'dd',
            {},
            d.request ? `${String(d.request['src_lang'])} → ${String(d.request['tgt_lang'])}` : '–',
          ),
          h('dt', {}, 'created / finished'),
          h('dd', {}, `${time(j.created_at)} / ${time(j.finished_at)}`),
          h('dt', {}, 'trace'),
          h(
            'dd',
            {},
            d.trace_url
              ? h(
                  'a',
                  { href: d.trace_url, target: '_blank', rel: 'noopener', id: 'trace-link' },
                  `open in Jaeger (${d.trace_id})`,
                )
              : d.trace_id
                ? `${d.trace_id} (set SB_JAEGER_URL to link it)`
                : 'not traced',
          ),
        ),
        j.error ? h('p', { class: 'error', id: 'job-error' }, `${j.error.code}: ${j.error.message}`) : null,
        h('h2', {}, 'Attempts'),
        table(
          ['attempt', 'node', 'status', 'reason'],
          j.attempts,
          (a) => [a.attempt_id, a.node_id || '–', a.status, a.reason ?? '–'],
          {
            empty: 'not placed yet',
          },
        ),
        h('h2', {}, 'Placement'),
        d.placement
          ? h(
              'div',
              {},
              h(
                'p',
                {},
                `pool ${d.placement.pool}, chosen ${d.placement.node_id} in ${d.placement.selection_us} µs`,
              ),
              breakdownTable(d.placement.breakdown),
            )
          : h('p', { class: 'muted' }, 'no placement recorded'),
        h('h2', {}, 'Partial results'),
        j.partials && j.partials.length > 0
          ? h(
              'ol',
              { class: 'partials' },
              ...j.partials.map((p) => h('li', {}, p.text, p.is_final ? ' (final)' : '')),
            )
          : h('p', { class: 'muted' }, 'none'),
        h('h2', {}, 'Result'),
        j.result === undefined ? h('p', { class: 'muted' }, 'none yet') : json(j.result),
      );
    },
  };
}
