import './style.css';
import { api, ApiError, type Dashboard, type Session } from './api.js';
import { h, replace } from './dom.js';
import { connection } from './live.js';
import { navigate, NAVIGATE_EVENT } from './navigate.js';
import { alertsPage } from './pages/alerts.js';
import { catalogPage } from './pages/catalog.js';
import { loginPage } from './pages/login.js';
import { dashboardPage, dashboardsPage } from './pages/dashboards.js';
import { overviewPage } from './pages/overview.js';
import { sqlPage } from './pages/sql.js';
import { viewPage, viewsPage } from './pages/views.js';

/** A page draws itself into `root` and answers what stops its timers and streams when the user leaves it. */
export type Page = (root: HTMLElement, params: Record<string, string>) => (() => void) | void;

/** The client routes; the server answers the console at each of them too (src/http/console-routes.ts). */
const ROUTES: [RegExp, Page, string][] = [
  [/^\/$/, overviewPage, 'Overview'],
  [/^\/views$/, viewsPage, 'Views'],
  [/^\/views\/(?<view>[^/]+)$/, viewPage, 'Views'],
  [/^\/dashboards$/, dashboardsPage, 'Dashboards'],
  [/^\/dashboards\/(?<name>[^/]+)$/, dashboardPage, 'Dashboards'],
  [/^\/sql$/, sqlPage, 'SQL'],
  [/^\/catalog$/, catalogPage, 'Catalog'],
  [/^\/catalog\/(?<table>[^/]+)$/, catalogPage, 'Catalog'],
  [/^\/alerts$/, alertsPage, 'Alerts'],
];

/** The pages in the header, each with the part of the session's `can` it needs (the overview is always there). */
const NAV: [string, string, keyof Session['can'] | null][] = [
  ['/', 'Overview', null],
  ['/views', 'Views', 'views'],
  ['/dashboards', 'Dashboards', 'dashboards'],
  ['/sql', 'SQL', 'sql'],
  ['/catalog', 'Catalog', 'catalog'],
  ['/alerts', 'Alerts', 'alerts'],
];

const app = document.getElementById('app')!;
const nav = document.getElementById('nav')!;
const status = document.getElementById('connection')!;
let leave: (() => void) | void = undefined;

function render(): void {
  leave?.();
  leave = undefined;
  const path = location.pathname.replace(/\/+$/, '') || '/';
  const match = ROUTES.map(([pattern, page, section]) => ({ found: pattern.exec(path), page, section })).find((r) => r.found);
  for (const link of nav.querySelectorAll('a')) link.classList.toggle('active', link.textContent === match?.section);
  const root = h('div', { class: 'page' });
  replace(app, root);
  if (!match) {
    replace(root, h('h1', {}, 'Not found'), h('p', {}, 'No page at ', h('code', {}, path), '. ', h('a', { href: '/' }, 'Overview')));
    return;
  }
  const params = Object.fromEntries(Object.entries(match.found!.groups ?? {}).map(([k, v]) => [k, decodeURIComponent(v)]));
  leave = match.page(root, params);
}


// Same-origin links to console pages change the page in place; API links (/v1/...) and new-tab clicks load normally.
document.addEventListener('click', (event) => {
  const link = (event.target as Element).closest('a');
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/v1/') || url.pathname === '/health' || link.target || link.hasAttribute('download')) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', render);
window.addEventListener(NAVIGATE_EVENT, render);

connection.listeners.add((open) => {
  status.textContent = open ? 'live' : 'reconnecting…';
  status.className = `connection ${open ? 'open' : 'closed'}`;
});

/**
 * Starts the console as the session's token: the header shows only the pages it may use (the server refuses
 * the rest anyway), and who is logged in, with a way out.
 */
function start(session: Session): void {
  replace(nav, NAV.filter(([, , need]) => need === null || session.can[need]).map(([href, label]) => h('a', { href }, label)));
  const logout = async (event: Event) => {
    event.preventDefault();
    await api('/v1/session', { method: 'DELETE' }).catch(() => undefined);
    location.assign('/');
  };
  status.after(h('span', { class: 'who' }, session.name, ' · ', h('a', { href: '/', onclick: (event: Event) => void logout(event) }, 'log out')));
  render();

  // Dashboards declared in the config get their own links beside the pages.
  if (session.can.dashboards) {
    api<{ dashboards: Dashboard[] }>('/v1/dashboards')
      .then(({ dashboards }) => {
        for (const dashboard of dashboards) nav.appendChild(h('a', { href: `/dashboards/${encodeURIComponent(dashboard.name)}`, class: 'sub' }, dashboard.name));
      })
      .catch(() => {});
  }
}

// Without a session (or with one that expired or whose token was revoked), the login form.
api<Session>('/v1/session')
  .then(start)
  .catch((error: unknown) => {
    if (error instanceof ApiError && error.status === 401) {
      const root = h('div', { class: 'page' });
      replace(app, root);
      loginPage(root);
    } else {
      replace(app, h('p', { class: 'error' }, `Cannot reach Strata: ${(error as Error).message}`));
    }
  });
