/**
 * Alerts (issue 6): rules in the config on a view's merged or speed values, checked against the compiled views
 * when Strata opens (compileAlerts), evaluated as the speed layer updates (AlertEvaluator), their firing and
 * resolving events POSTed to a webhook with retries.
 */
export { compileAlerts, type AlertRule } from './compile-alerts.js';
export {
  AlertEvaluator,
  CLOSE_GRACE_MS,
  EVENTS_KEPT,
  MAX_EVALUATION_INTERVAL_MS,
  MAX_QUEUED_EVENTS,
  type AlertEvaluatorOptions,
  type AlertEvent,
  type AlertEventRecord,
  type AlertState,
  type AlertStatus,
} from './alert-evaluator.js';
export { ruleValueSql } from './rule-sql.js';
export { backoffDelay, deliverWebhook, MAX_BACKOFF_MS, type DeliveryOutcome } from './webhook.js';
