import type { AlertDeclared, AlertLayer } from './alerts-schema.js';
import { durationMs } from './schema.js';

export { ALERT_LAYERS, type AlertInput, type AlertLayer } from './alerts-schema.js';

/** Where an alert's events go, and how hard Strata tries. */
export interface AlertNotify {
  readonly webhook: string;
  /** Attempts per event, the first included. */
  readonly attempts: number;
  /** The limit on one attempt, in ms. */
  readonly timeoutMs: number;
  /** The wait before the first retry, in ms; doubled at each further retry (with jitter), up to a minute. */
  readonly backoffMs: number;
}

/**
 * An alert rule as declared, its shape checked. Whether `measure` is a measure of the view and `where` names only
 * its group-by columns is checked against the compiled view when Strata opens (src/alerts).
 */
export interface AlertConfig {
  readonly name: string;
  readonly view: string;
  /** The SQL condition as written; null for every group of the view. */
  readonly where: string | null;
  readonly measure: string;
  /** The alert holds while the value is below (or above) the threshold, strictly. */
  readonly condition: 'below' | 'above';
  readonly threshold: number;
  /** How long the condition must hold without a break before the alert fires, in ms (0: at once). */
  readonly forMs: number;
  readonly layer: AlertLayer;
  readonly notify: AlertNotify;
}

/** Bounds of each duration an alert declares, so that a typo cannot make a rule wait a year or retry in a spin. */
const DURATION_BOUNDS = {
  for: { min: 0, max: 7 * 86_400_000, shown: '0 to 7d' },
  'notify.timeout': { min: 100, max: 120_000, shown: '100ms to 2m' },
  'notify.backoff': { min: 10, max: 600_000, shown: '10ms to 10m' },
} as const;

/**
 * Checks the declared alerts beyond their shape and returns them, or the problems, each naming the alert: a view
 * the config does not declare, both or neither of `below` and `above`, a malformed or out-of-range duration.
 */
export function resolveAlerts(
  declared: Readonly<Record<string, AlertDeclared>>,
  views: ReadonlySet<string>,
): { alerts: Map<string, AlertConfig>; problems: string[] } {
  const alerts = new Map<string, AlertConfig>();
  const problems: string[] = [];
  for (const [name, alert] of Object.entries(declared)) {
    const at = `alerts.${name}`;
    const before = problems.length;
    if (!views.has(alert.view)) problems.push(`${at}.view: "${alert.view}" is not a view of the config`);
    if (alert.below !== undefined && alert.above !== undefined) problems.push(`${at}: give one of below or above, not both`);
    if (alert.below === undefined && alert.above === undefined) problems.push(`${at}: give a threshold, below or above`);
    const duration = (key: keyof typeof DURATION_BOUNDS, text: string | undefined): number => {
      if (text === undefined) return 0;
      const ms = durationMs(text);
      const bounds = DURATION_BOUNDS[key];
      if (ms === null) {
        problems.push(`${at}.${key}: expected a duration such as "300ms", "30s" or "2m", got ${JSON.stringify(text)}`);
        return 0;
      }
      if (ms < bounds.min || ms > bounds.max) problems.push(`${at}.${key}: ${text} is out of range (${bounds.shown})`);
      return ms;
    };
    const forMs = duration('for', alert.for);
    const timeoutMs = duration('notify.timeout', alert.notify.timeout);
    const backoffMs = duration('notify.backoff', alert.notify.backoff);
    if (problems.length > before) continue;
    alerts.set(name, {
      name,
      view: alert.view,
      where: alert.where ?? null,
      measure: alert.measure,
      condition: alert.below !== undefined ? 'below' : 'above',
      threshold: (alert.below ?? alert.above)!,
      forMs,
      layer: alert.layer,
      notify: { webhook: alert.notify.webhook, attempts: alert.notify.attempts, timeoutMs, backoffMs },
    });
  }
  return { alerts, problems };
}
