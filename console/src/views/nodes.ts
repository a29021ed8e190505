import { api, type JobSummary, type NodeDetail, type NodeEntry, type Session } from '../api.ts';
import { ago, fmt, h, table, time } from '../dom.ts';
import { fill, type View } from './view.ts';

function statusOf(n: NodeEntry): string {
  if ((n.quarantinedUntil ?? 0) > Date.now()) return `${n.status} · quarantined`;
  return n.draining ? `${n.status} · draining` : n.status;
}

function matches(n: NodeEntry, query: string): boolean {
  if (query === '') return true;
  const q = query.toLowerCase();
  return [n.id, statusOf(n), ...n.pools, ...n.types].some((text) => text.toLowerCase().includes(q));
}

/** #/nodes: the searchable table. */
export function nodesView(): View {
  const search = h('input', {
    type: 'search',
    placeholder: 'search id, status, pool, service type',
    'aria-label': 'search nodes',
  });
  const count = h('span', { class: 'muted' });
  const slot = h('div');
  let nodes: NodeEntry[] = [];
  const draw = () => {
    const shown = nodes.filter((n) => matches(n, search.value.trim()));
    fill(count, `${shown.length} of ${nodes.length}`);
    fill(
      slot,
      table(
        ['node', 'status', 'jobs', 'cpu / gpu / mem %', 'pools', 'heartbeat'],
        shown.sort((a, b) => a.id.localeCompare(b.id)),
        (n) => [
          h('a', { href: `#/nodes/${encodeURIComponent(n.id)}` }, n.id),
          h('span', { class: `badge ${n.status}${n.draining ? ' draining' : ''}` }, statusOf(n)),
          `${n.running + n.reserved} / ${n.max}`,
          `${fmt(n.cpu, 0)} / ${n.gpuPct === null ? '–' : fmt(n.gpuPct, 0)} / ${fmt(n.mem, 0)}`,
          n.pools.length,
          ago(n.hb),
        ],
        {
          rowId: (n) => n.id,
          onRow: (n) => (location.hash = `#/nodes/${encodeURIComponent(n.id)}`),
          empty: 'no nodes match',
        },
      ),
    );
  };
  search.addEventListener('input', draw);
  return {
    el: h(
      'section',
      { id: 'nodes' },
      h('h1', {}, 'Nodes'),
      h('div', { class: 'toolbar' }, search, count),
      slot,
    ),
    refresh: async () => {
      nodes = (await api<{ nodes: NodeEntry[] }>('/v1/nodes')).nodes;
      draw();
    },
  };
}

function langList(lang: Record<string, unknown>, key: string): string {
  const list = lang[key];
  return Array.isArray(list) && list.length > 0 ? list.join(', ') : '–';
}

/**
 * #/nodes/<id>: capabilities, history of status changes, pools, running jobs, drain / undrain
 * (admins, with confirmation).
 */
export function nodeView(id: string, session: Session): View {
  const slot = h('div');
  const actions = h('div', { class: 'actions' });
  const message = h('p', { class: 'muted', role: 'status' });
  let node: NodeDetail | null = null;
  let confirming = false;

  const confirm = async (draining: boolean) => {
    confirming = false;
    try {
      await api(`/v1/nodes/${encodeURIComponent(id)}/drain`, { method: draining ? 'DELETE' : 'POST' });
      fill(message, `${draining ? 'undrained' : 'drained'} ${id}`);
      if (node) node.live.draining = !draining;
    } catch (err) {
      fill(message, `failed: ${(err as Error).message}`);
    }
    drawActions();
  };

  const drawActions = (): void => {
    if (!node || session.role !== 'admin') return fill(actions);
    const draining = node.live.draining;
    const verb = draining ? 'Undrain' : 'Drain';
    if (!confirming) {
      return fill(
        actions,
        h(
          'button',
          { type: 'button', id: 'drain', onclick: () => ((confirming = true), drawActions()) },
          `${verb} node…`,
        ),
      );
    }
    fill(
      actions,
      h(
        'div',
        { class: 'confirm', role: 'alertdialog', 'aria-label': `${verb} ${id}?` },
        h(
          'p',
          {},
          draining ? `Give ${id} new jobs again?` : `Stop giving ${id} new jobs? Running jobs finish.`,
        ),
        h(
          'button',
          {
            type: 'button',
            id: 'confirm-drain',
            class: 'danger',
            onclick: () => void confirm(draining),
          },
          `Yes, ${verb.toLowerCase()} ${id}`,
        ),
        h('button', { type: 'button', onclick: () => ((confirming = false), drawActions()) }, 'Cancel'),
      ),
    );
  };

  return {
    el: h(
      'section',
      { id: 'node' },
      h('p', {}, h('a', { href: '#/nodes' }, '← nodes')),
      h('h1', {}, 'Node ', h('code', {}, id)),
      actions,
      message,
      slot,
    ),
    refresh: async () => {
      const [detail, recent] = await Promise.all([
        api<NodeDetail>(`/v1/nodes/${encodeURIComponent(id)}`),
        api<{ jobs: JobSummary[] }>('/v1/jobs?list=recent&limit=200'),
      ]);
      node = detail;
      const running = recent.jobs.filter(
        (j) => j.node_id === id && j.status !== 'finished' && j.status !== 'failed',
      );
      const q = detail.live.quarantine;
      fill(
        slot,
        h(
          'dl',
          { class: 'facts' },
          h('dt', {}, 'status'),
          h(
            'dd',
            { 'data-fact': 'status' },
            `${detail.live.status ?? detail.status}${detail.live.draining ? ' · draining' : ''}`,
          ),
          h('dt', {}, 'jobs'),
          h(
            'dd',
            {},
            `${detail.live.running} running + ${detail.live.reserved} reserved of ${detail.max ?? '–'}`,
          ),
          h('dt', {}, 'load'),
          h(
            'dd',
            {},
            `cpu ${fmt(detail.cpu, 0)} %, gpu ${detail.gpuPct === null ? '–' : `${fmt(detail.gpuPct, 0)} %`}, mem ${fmt(detail.mem, 0)} %`,
          ),
          h('dt', {}, 'last heartbeat'),
          h('dd', {}, `${time(detail.live.last_heartbeat_at)} (${ago(detail.live.last_heartbeat_at)})`),
          h('dt', {}, 'quarantine'),
          h(
            'dd',
            {},
            q.active
              ? `until ${time(q.until)} (${q.reason ?? '?'}), level ${q.level}`
              : `no (${q.faults} recent faults)`,
          ),
          h('dt', {}, 'shard'),
          h('dd', {}, detail.shard ?? '–'),
        ),
        h('h2', {}, 'Capabilities'),
        h(
          'dl',
          { class: 'facts' },
          h('dt', {}, 'service types ready'),
          h('dd', {}, detail.types?.join(', ') || '–'),
          h('dt', {}, 'features'),
          h('dd', {}, detail.features?.join(', ') || '–'),
          h('dt', {}, 'ASR'),
          h('dd', {}, langList(detail.lang ?? {}, 'asr_languages')),
          h('dt', {}, 'TTS'),
          h('dd', {}, langList(detail.lang ?? {}, 'tts_languages')),
          h('dt', {}, 'semantic'),
          h('dd', {}, langList(detail.lang ?? {}, 'semantic_languages')),
          h('dt', {}, 'GPU, public jobs'),
          h(
            'dd',
            {},
            `${detail.gpu ? 'GPU' : 'no GPU'}, ${detail.public ? 'accepts public jobs' : 'no public jobs'}`,
          ),
        ),
        h('h2', {}, 'History'),
        h(
          'div',
          { id: 'history' },
          table(
            ['when', 'became', 'why'],
            detail.live.history ?? [],
            (e) => [
              `${time(e.at)} (${ago(e.at)})`,
              h('span', { class: `badge ${e.status}` }, e.status),
              `${e.reason.replace(/_/g, ' ')}${e.by ? ` by ${e.by}` : ''}`,
            ],
            { empty: 'no status changes recorded' },
          ),
        ),
        h('h2', {}, `Pools (${detail.pools?.length ?? 0})`),
        h('p', { class: 'pools' }, detail.pools?.join(' ') || '–'),
        h('h2', {}, 'Running jobs'),
        table(
          ['job', 'status', 'pair', 'since'],
          running,
          (j) => [
            h('a', { href: `#/jobs/${encodeURIComponent(j.job_id)}` }, j.job_id),
            j.status,
            j.pair ?? '–',
            ago(j.created_at),
          ],
          { empty: 'none among the recent jobs' },
        ),
      );
      drawActions();
    },
  };
}
