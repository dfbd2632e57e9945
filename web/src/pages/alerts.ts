import { api, type AlertEventRecord, type AlertInfo } from '../api.js';
import { formatDuration, formatNumber, h, replace } from '../dom.js';

const POLL_MS = 1000;
/** Events listed at most across the rules, newest first. */
const EVENTS_SHOWN = 50;

/**
 * Alerts: every rule of the config with its state, current value and last notification, then the recent firing
 * and resolved events of all rules with their delivery to the webhook. Polls `GET /v1/alerts` every second.
 */
export function alertsPage(root: HTMLElement): () => void {
  const rulesBox = h('div', { 'data-testid': 'alerts' }, h('p', { class: 'muted' }, 'Loading…'));
  const eventsBox = h('div', { 'data-testid': 'alert-events' });
  const error = h('p', { class: 'error', hidden: true });
  replace(
    root,
    h('h1', {}, 'Alerts'),
    h(
      'p',
      { class: 'lead' },
      'Rules from the config, evaluated as the speed layer updates: a rule is pending while its condition holds for less than its "for", ',
      'then fires; firing and resolved events are posted to its webhook, with retries.',
    ),
    error,
    rulesBox,
    h('h2', {}, 'Recent events'),
    eventsBox,
  );

  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tick = async () => {
    try {
      const { alerts } = await api<{ alerts: AlertInfo[] }>('/v1/alerts');
      if (stopped) return;
      error.hidden = true;
      const now = Date.now();
      replace(rulesBox, alerts.length === 0 ? noAlerts() : rulesTable(alerts, now));
      replace(eventsBox, eventsTable(alerts));
    } catch (e) {
      if (stopped) return;
      error.hidden = false;
      error.textContent = `Cannot reach Strata: ${(e as Error).message}`;
    }
    if (!stopped) timer = setTimeout(() => void tick(), POLL_MS);
  };
  void tick();

  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function noAlerts(): HTMLElement {
  return h(
    'div',
    {},
    h('p', { class: 'muted' }, 'The config declares no alerts. A rule looks like this (see the README):'),
    h(
      'pre',
      { class: 'sql' },
      '"alerts": { "checkout_drop": { "view": "page_minute", "where": "page = \'/checkout\'", "measure": "views", "below": 10, "for": "2m",\n' +
        '  "notify": { "webhook": "http://127.0.0.1:9000/hook" } } }',
    ),
  );
}

/** `views below 10 for 2m where page = '/checkout'`. */
function describeRule(alert: AlertInfo): string {
  const parts = [`${alert.measure} ${alert.condition} ${formatNumber(alert.threshold)}`];
  if (alert.forMs > 0) parts.push(`for ${alert.forMs < 1000 ? `${alert.forMs} ms` : formatDuration(alert.forMs)}`);
  if (alert.where) parts.push(`where ${alert.where}`);
  if (alert.layer === 'speed') parts.push('(speed layer)');
  return parts.join(' ');
}

function describeValue(alert: AlertInfo): (HTMLElement | string)[] {
  if (alert.evaluatedAt === null && alert.error === null) return ['not evaluated yet'];
  return [
    alert.value === null ? h('span', { class: 'muted' }, 'no value') : formatNumber(alert.value),
    alert.bucket ? h('div', { class: 'note' }, `${alert.timeKey} ${new Date(alert.bucket).toLocaleString()}`) : '',
  ];
}

function rulesTable(alerts: AlertInfo[], now: number): HTMLElement {
  return h(
    'table',
    { class: 'rows' },
    h('thead', {}, h('tr', {}, ['alert', 'rule', 'state', 'value', 'since', 'last notification'].map((t) => h('th', {}, t)))),
    h(
      'tbody',
      {},
      alerts.map((alert) =>
        h(
          'tr',
          { 'data-alert': alert.name, 'data-state': alert.state, class: alert.state },
          h('td', {}, h('strong', {}, alert.name), h('div', { class: 'note' }, `view ${alert.view} → ${alert.webhook}`)),
          h('td', {}, h('code', {}, describeRule(alert))),
          h(
            'td',
            { class: `state ${alert.state}` },
            alert.state,
            alert.firesAt ? h('div', { class: 'note' }, `fires in ${formatDuration(Math.max(0, Date.parse(alert.firesAt) - now))} if it holds`) : null,
            alert.error ? h('div', { class: 'error' }, alert.error) : null,
          ),
          h('td', { class: 'num', 'data-value': alert.value === null ? '' : String(alert.value) }, describeValue(alert)),
          h('td', {}, `${formatDuration(now - Date.parse(alert.since))} ago`),
          h('td', {}, alert.lastNotification ? notification(alert.lastNotification) : h('span', { class: 'muted' }, 'none yet')),
        ),
      ),
    ),
  );
}

/** An event's delivery: its state, attempts and the last error while it is not delivered. */
function delivery(record: AlertEventRecord): HTMLElement {
  const { state, attempts, lastError } = record.delivery;
  return h(
    'span',
    { class: `state ${state}`, 'data-delivery': state },
    state,
    attempts > 1 || state === 'failed' ? ` after ${attempts} attempt${attempts === 1 ? '' : 's'}` : '',
    lastError && state !== 'delivered' ? h('div', { class: 'error' }, lastError) : null,
  );
}

function notification(record: AlertEventRecord): HTMLElement {
  return h('div', {}, h('span', { class: `state ${record.event.state}` }, record.event.state), ` ${new Date(record.event.at).toLocaleTimeString()} · `, delivery(record));
}

function eventsTable(alerts: AlertInfo[]): HTMLElement {
  const events = alerts
    .flatMap((alert) => alert.events)
    .sort((a, b) => Date.parse(b.event.at) - Date.parse(a.event.at))
    .slice(0, EVENTS_SHOWN);
  if (events.length === 0) return h('p', { class: 'muted' }, 'No alert has fired yet.');
  return h(
    'table',
    { class: 'rows' },
    h('thead', {}, h('tr', {}, ['at', 'alert', 'event', 'value', 'threshold', 'delivery'].map((t) => h('th', {}, t)))),
    h(
      'tbody',
      {},
      events.map((record) =>
        h(
          'tr',
          { 'data-event': record.id },
          h('td', {}, new Date(record.event.at).toLocaleString()),
          h('td', {}, record.event.alert),
          h('td', { class: `state ${record.event.state}` }, record.event.state),
          h('td', { class: 'num' }, record.event.value === null ? 'no value' : formatNumber(record.event.value)),
          h('td', { class: 'num' }, formatNumber(record.event.threshold)),
          h('td', {}, delivery(record)),
        ),
      ),
    ),
  );
}
