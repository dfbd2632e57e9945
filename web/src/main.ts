import './style.css';
import { api, type Dashboard } from './api.js';
import { h, replace } from './dom.js';
import { connection } from './live.js';
import { navigate, NAVIGATE_EVENT } from './navigate.js';
import { catalogPage } from './pages/catalog.js';
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
];

const NAV: [string, string][] = [
  ['/', 'Overview'],
  ['/views', 'Views'],
  ['/dashboards', 'Dashboards'],
  ['/sql', 'SQL'],
  ['/catalog', 'Catalog'],
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

replace(nav, NAV.map(([href, label]) => h('a', { href }, label)));
render();

// Dashboards declared in the config get their own links beside the pages.
api<{ dashboards: Dashboard[] }>('/v1/dashboards')
  .then(({ dashboards }) => {
    for (const dashboard of dashboards) nav.appendChild(h('a', { href: `/dashboards/${encodeURIComponent(dashboard.name)}`, class: 'sub' }, dashboard.name));
  })
  .catch(() => {});
