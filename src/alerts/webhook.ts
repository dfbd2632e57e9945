import { setTimeout as sleep } from 'node:timers/promises';
import type { AlertNotify } from '../config/index.js';

/** The longest wait between two attempts, however many came before. */
export const MAX_BACKOFF_MS = 60_000;

/** Where one event's delivery to its webhook stands; updated in place while it runs. */
export interface DeliveryOutcome {
  /**
   * `queued` behind the rule's earlier events, `delivering` (an attempt running or a retry waiting), `delivered`
   * (a 2xx answer), `failed` (attempts used up, or an answer no retry can change), `dropped` (too many events of
   * the rule were waiting), `abandoned` (Strata closed first).
   */
  state: 'queued' | 'delivering' | 'delivered' | 'failed' | 'dropped' | 'abandoned';
  /** Attempts made so far. */
  attempts: number;
  /** The HTTP status of the last answer, or null when none came (refused, timed out). */
  lastStatus: number | null;
  /** Why the last attempt failed; null once delivered. */
  lastError: string | null;
  /** When the delivery ended (ISO-8601), or null while it runs. */
  finishedAt: string | null;
}

/**
 * Whether an answer may change on a retry: a timeout-like or server-side status. Any other 4xx (a wrong path, a
 * refused payload) and a redirect (not followed, so a webhook cannot send Strata on to another host) will not.
 */
function retryable(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/**
 * The wait before retry number `retry` (1 for the first): the backoff doubled per retry up to
 * {@link MAX_BACKOFF_MS}, of which a random half ("equal jitter"), so that many alerts firing together after an
 * outage of their receiver do not retry in lockstep, yet each wait is at least half the nominal one.
 */
export function backoffDelay(retry: number, backoffMs: number, random: () => number = Math.random): number {
  const nominal = Math.min(MAX_BACKOFF_MS, backoffMs * 2 ** (retry - 1));
  return nominal / 2 + random() * (nominal / 2);
}

/** The message of a failed fetch: undici hides the reason (ECONNREFUSED, ENOTFOUND) in `cause`. */
function failureMessage(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && error.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  const cause = error instanceof Error ? (error.cause as { code?: string; message?: string } | undefined) : undefined;
  if (cause?.code) return `${cause.code}${cause.message && !cause.message.includes(cause.code) ? `: ${cause.message}` : ''}`;
  return error instanceof Error ? error.message : String(error);
}

/**
 * POSTs `body` (JSON) to the webhook until it answers 2xx, at most `notify.attempts` times, each attempt limited
 * to `notify.timeoutMs`, waiting {@link backoffDelay} between attempts. Never throws: the outcome is written into
 * `outcome` as it goes, so a caller can show a delivery while it is still retrying. `signal` (Strata closing)
 * abandons it between or during attempts.
 */
export async function deliverWebhook(
  notify: AlertNotify,
  body: string,
  headers: Readonly<Record<string, string>>,
  outcome: DeliveryOutcome,
  signal: AbortSignal,
  random: () => number = Math.random,
): Promise<void> {
  const finish = (state: DeliveryOutcome['state']) => {
    outcome.state = state;
    outcome.finishedAt = new Date().toISOString();
  };
  for (let attempt = 1; attempt <= notify.attempts; attempt++) {
    if (signal.aborted) return finish('abandoned');
    outcome.state = 'delivering';
    outcome.attempts = attempt;
    try {
      const response = await fetch(notify.webhook, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'strata-alerts', ...headers },
        body,
        redirect: 'manual',
        signal: AbortSignal.any([signal, AbortSignal.timeout(notify.timeoutMs)]),
      });
      // The answer's body is not read; cancelling it frees the connection for the next event.
      await response.body?.cancel().catch(() => undefined);
      outcome.lastStatus = response.status;
      if (response.status >= 200 && response.status < 300) {
        outcome.lastError = null;
        return finish('delivered');
      }
      outcome.lastError = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
      if (!retryable(response.status)) return finish('failed');
    } catch (error) {
      if (signal.aborted) return finish('abandoned');
      outcome.lastStatus = null;
      outcome.lastError = failureMessage(error, notify.timeoutMs);
    }
    if (attempt < notify.attempts) {
      try {
        await sleep(backoffDelay(attempt, notify.backoffMs, random), undefined, { signal });
      } catch {
        return finish('abandoned');
      }
    }
  }
  finish('failed');
}
