import { z } from 'zod';

/**
 * The shape of the top-level `alerts` block (issue 6). Only the structure is checked here; durations and the
 * choice of `below` or `above` by `resolveAlerts` (alert-rules.ts), the measure and the `where` condition against
 * the compiled view by DuckDB when Strata opens (src/alerts). Like transform-schema.ts, this module imports
 * nothing of the config's own, so that schema.ts can use it without an import cycle.
 */

/** What an alert reads: the merged view (batch and speed layers), or the speed layer's recent rows alone. */
export const ALERT_LAYERS = ['merged', 'speed'] as const;
export type AlertLayer = (typeof ALERT_LAYERS)[number];

/** A webhook is called over HTTP(S) only: no file:, data: or other scheme can ride in through the config. */
function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** fetch refuses a URL with a user name or password in it: refused here, where the config names it. */
function hasNoCredentials(value: string): boolean {
  try {
    const url = new URL(value);
    return url.username === '' && url.password === '';
  } catch {
    return true;
  }
}

const notifySchema = z.strictObject({
  /** Receives a JSON POST when the alert fires and when it resolves. */
  webhook: z
    .string()
    .refine(isHttpUrl, 'expected an http:// or https:// URL')
    .refine(hasNoCredentials, 'a webhook URL cannot carry a user name or password'),
  /** Attempts per event, the first included; a failed one is retried with exponential backoff and jitter. */
  attempts: z.number().int().min(1).max(20).default(5),
  /** How long one attempt may take before it counts as failed (a duration). */
  timeout: z.string().default('5s'),
  /** The wait before the first retry (a duration); it doubles at each further retry, up to a minute. */
  backoff: z.string().default('1s'),
});

/** One alert rule: a condition on a measure of a view, held for a while, notified to a webhook. */
export const alertSchema = z.strictObject({
  view: z.string().min(1),
  /** A SQL condition on the view's group-by columns, e.g. `page = '/checkout'`; all groups without it. */
  where: z.string().trim().min(1, 'is an empty condition').optional(),
  measure: z.string().min(1),
  below: z.number().optional(),
  above: z.number().optional(),
  /** How long the condition must hold, without a break, before the alert fires (a duration; default: at once). */
  for: z.string().optional(),
  notify: notifySchema,
  layer: z.enum(ALERT_LAYERS).default('merged'),
});

/** An `alerts` entry as a user writes it. */
export type AlertInput = z.input<typeof alertSchema>;
/** An `alerts` entry with its defaults filled in. */
export type AlertDeclared = z.output<typeof alertSchema>;
