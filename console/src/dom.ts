/** A few DOM helpers: every text goes in as a text node (no HTML from data, ever). */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((e: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') el.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'object' ? child : String(child));
  }
  return el;
}

/** A table: header labels, then one row of cells per item; `onRow` makes rows clickable. */
export function table<T>(
  headers: string[],
  items: T[],
  cells: (item: T) => Child[],
  options: { onRow?: (item: T) => void; rowId?: (item: T) => string; empty?: string } = {},
): HTMLElement {
  if (items.length === 0) return h('p', { class: 'muted' }, options.empty ?? 'nothing');
  return h(
    'table',
    {},
    h('thead', {}, h('tr', {}, ...headers.map((label) => h('th', {}, label)))),
    h(
      'tbody',
      {},
      ...items.map((item) =>
        h(
          'tr',
          {
            class: options.onRow ? 'clickable' : null,
            'data-id': options.rowId?.(item),
            onclick: options.onRow ? () => options.onRow!(item) : null,
          },
          ...cells(item).map((cell) => h('td', {}, cell)),
        ),
      ),
    ),
  );
}

/** A labelled figure for the fleet cards. */
export function stat(label: string, value: Child, testId: string, hint?: string): HTMLElement {
  return h(
    'div',
    { class: 'stat', 'data-stat': testId, title: hint },
    h('div', { class: 'stat-value' }, value),
    h('div', { class: 'stat-label' }, label),
  );
}

export function fmt(n: number | null | undefined, digits = 1): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits);
}

export function ago(ms: number | null | undefined, now = Date.now()): string {
  if (!ms) return '–';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

export function time(ms: number | null | undefined): string {
  return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '–';
}
