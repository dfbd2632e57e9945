/**
 * Prometheus metrics of a running Strata (`GET /metrics`): one registry per instance, fed by the HTTP edge
 * once per request and by the layers' status methods at scrape time.
 */
export { StrataMetrics } from './strata-metrics.js';
