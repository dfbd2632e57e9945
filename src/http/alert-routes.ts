import type { FastifyInstance } from 'fastify';
import { NotFoundError } from '../errors.js';
import type { Strata } from '../strata.js';
import { principalOf } from './auth.js';

/**
 * Alerts over HTTP:
 *
 * - `GET /v1/alerts` → `{"alerts": [{"name", "view", "measure", "where", "condition": "below|above", "threshold",
 *   "forMs", "layer", "timeKey", "webhook" (its origin only), "state": "ok|pending|firing", "since", "firesAt",
 *   "value", "bucket", "evaluatedAt", "error", "lastNotification", "events": [{"id", "event": {"alert", "state":
 *   "firing|resolved", "value", "threshold", "view", "measure", "at"}, "delivery": {"state", "attempts",
 *   "lastStatus", "lastError", "finishedAt"}}]}]}`, the rules in declaration order, events newest first.
 * - `GET /v1/alerts/{name}` → one of those; 404 for an unknown alert.
 *
 * An alert is shown to a token that may read its view (`read view:V`), as the view itself would be.
 */
export function registerAlertRoutes(app: FastifyInstance, strata: Strata): void {
  const visible = (request: Parameters<typeof principalOf>[0]) => {
    const principal = principalOf(request);
    return strata.alerts.status().filter((alert) => strata.security.allows(principal, 'read', `view:${alert.view}`));
  };
  app.get('/v1/alerts', async (request) => ({ alerts: visible(request) }));

  app.get<{ Params: { name: string } }>('/v1/alerts/:name', async (request) => {
    const alert = visible(request).find((one) => one.name === request.params.name);
    if (!alert) {
      const known = [...strata.config.alerts.keys()];
      throw new NotFoundError(`unknown alert "${request.params.name}"${known.length > 0 ? `; alerts: ${known.join(', ')}` : '; the config declares no alerts'}`);
    }
    return alert;
  });
}
