import { api, ApiError, type Fleet, type Session } from './api.ts';
import { h } from './dom.ts';
import type { Sample } from './stats.ts';
import { renderFleet } from './views/fleet.ts';
import { jobsView, jobView } from './views/jobs.ts';
import { nodesView, nodeView } from './views/nodes.ts';
import { fill, type View } from './views/view.ts';
import { whyView } from './views/why.ts';

/**
 * The Switchboard console: hash routes (#/fleet, #/nodes[/id], #/jobs[/id], #/why), each a View
 * the poll refreshes every POLL_MS without reloading the page.
 */

const POLL_MS = 2000;
/** Fleet samples kept (for rates, windowed p99s and the load chart): 2 minutes. */
const SAMPLES_KEPT = 60;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const main = $<HTMLElement>('view');
const status = $<HTMLElement>('status');
const loginForm = $<HTMLFormElement>('login');
const samples: Sample[] = [];
let session: Session | null = null;
let view: View | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;

function fleetView(): View {
  const el = h('div');
  return {
    el,
    refresh: async () => {
      const fleet = await api<Fleet>('/v1/console/fleet');
      samples.push({ at: Date.now(), fleet });
      if (samples.length > SAMPLES_KEPT) samples.shift();
      fill(el, renderFleet(samples));
    },
  };
}

function route(): View {
  const [path = '', query = ''] = location.hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  switch (parts[0] ?? '') {
    case 'nodes':
      return parts[1] ? nodeView(parts[1], session!) : nodesView();
    case 'jobs':
      return parts[1] ? jobView(parts[1]) : jobsView();
    case 'why':
      return whyView(new URLSearchParams(query));
    default:
      return fleetView();
  }
}

async function tick(): Promise<void> {
  clearTimeout(timer);
  const current = view;
  if (!current) return;
  try {
    await current.refresh();
    fill(status, `live · updated ${new Date().toLocaleTimeString()}`);
    status.className = '';
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return showLogin('your session ended: sign in again');
    fill(status, `cannot refresh: ${(err as Error).message}`);
    status.className = 'error';
  }
  if (view === current) timer = setTimeout(() => void tick(), POLL_MS);
}

function show(): void {
  const name = location.hash.replace(/^#\/?/, '').split(/[/?]/)[0] || 'fleet';
  for (const a of document.querySelectorAll<HTMLAnchorElement>('#nav a[data-view]'))
    a.classList.toggle('active', a.dataset['view'] === name);
  view = route();
  fill(main, view.el);
  void tick();
}

function showLogin(message = ''): void {
  session = null;
  view = null;
  clearTimeout(timer);
  fill(main);
  $('nav').hidden = true;
  $('sign-out').hidden = true;
  fill($('who'));
  loginForm.hidden = false;
  fill(
    $('login-error'),
    message || (new URLSearchParams(location.search).has('error') ? 'not a valid API key' : ''),
  );
  loginForm.querySelector('input')?.focus();
}

function signedIn(s: Session): void {
  session = s;
  loginForm.hidden = true;
  $('nav').hidden = false;
  $('sign-out').hidden = !s.auth;
  $('queues-link').hidden = s.role !== 'admin';
  fill($('who'), s.auth ? `${s.role} · ${s.tenant ?? ''}` : 'auth off');
  show();
}

loginForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const key = new FormData(loginForm).get('key');
  void (async () => {
    try {
      await api('/console/login', { method: 'POST', body: { key } });
      loginForm.reset();
      signedIn(await api<Session>('/console/session'));
    } catch (err) {
      fill(
        $('login-error'),
        err instanceof ApiError && err.status === 401 ? 'not a valid API key' : (err as Error).message,
      );
    }
  })();
});

$('sign-out').addEventListener('click', () => {
  void api('/console/logout', { method: 'POST' }).finally(() => showLogin());
});

window.addEventListener('hashchange', () => {
  if (session) show();
});

void api<Session>('/console/session').then(signedIn, () => showLogin());
