import { randomUUID } from 'node:crypto';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { AlertLayer } from '../config/index.js';
import { ConfigError } from '../errors.js';
import type { SpeedLayer } from '../speed/index.js';
import { quoteIdent } from '../util/duckdb.js';
import { mergeSql, type PartialRelations } from '../views/index.js';
import type { AlertRule } from './compile-alerts.js';
import { isNumericType, isTimeType, ruleValueSql } from './rule-sql.js';
import { deliverWebhook, type DeliveryOutcome } from './webhook.js';

/** Events kept per rule, with their delivery outcome; older ones are forgotten (they were delivered or not). */
export const EVENTS_KEPT = 20;
/**
 * Events of one rule waiting for delivery at most (the one being delivered included). A rule flapping while its
 * webhook is down would otherwise queue without bound; past it, a new event is recorded as `dropped`.
 */
export const MAX_QUEUED_EVENTS = 10;
/** Rules are evaluated at least this often, whatever the speed layer's interval. */
export const MAX_EVALUATION_INTERVAL_MS = 1000;
/** How long closing waits for deliveries under way (a `resolved` just sent) before abandoning them. */
export const CLOSE_GRACE_MS = 2000;

/**
 * Where a rule stands: `ok` (its condition does not hold), `pending` (it holds, for less than the rule's `for`),
 * `firing` (it has held for `for`; the `firing` event went out). A firing rule whose condition stops holding
 * goes back to `ok` and sends a `resolved` event.
 */
export type AlertState = 'ok' | 'pending' | 'firing';

/** What is POSTed to the webhook when a rule fires or resolves. */
export interface AlertEvent {
  readonly alert: string;
  readonly state: 'firing' | 'resolved';
  /** The value that made the change (null when the view has no value: an average over no rows). */
  readonly value: number | null;
  readonly threshold: number;
  readonly view: string;
  readonly measure: string;
  /** ISO-8601, UTC. */
  readonly at: string;
}

/** An event as kept in memory: its id (sent as the `x-strata-event` header, for receivers to drop retried copies) and its delivery. */
export interface AlertEventRecord {
  readonly id: string;
  readonly event: AlertEvent;
  readonly delivery: DeliveryOutcome;
}

/** A rule as `GET /v1/alerts` shows it. */
export interface AlertStatus {
  readonly name: string;
  readonly view: string;
  readonly measure: string;
  readonly where: string | null;
  readonly condition: 'below' | 'above';
  readonly threshold: number;
  readonly forMs: number;
  readonly layer: AlertLayer;
  /** The time key whose latest bucket is evaluated, or null when the view has none (all its rows count). */
  readonly timeKey: string | null;
  /** The webhook's origin alone: its path and query may carry a token. */
  readonly webhook: string;
  readonly state: AlertState;
  /** When the rule entered its state (ISO-8601). */
  readonly since: string;
  /** While pending: when it fires if the condition keeps holding. */
  readonly firesAt: string | null;
  /** The last value evaluated, null before the first evaluation or when the view has no value. */
  readonly value: number | null;
  /** The time bucket the value is of (ISO-8601), when the view has a time key. */
  readonly bucket: string | null;
  readonly evaluatedAt: string | null;
  /** Why the last evaluation failed; the rule keeps its state until one succeeds. */
  readonly error: string | null;
  /** The newest event and its delivery, or null before the rule first fired. */
  readonly lastNotification: AlertEventRecord | null;
  /** Up to {@link EVENTS_KEPT} events, newest first. */
  readonly events: readonly AlertEventRecord[];
}

export interface AlertEvaluatorOptions {
  readonly rules: readonly AlertRule[];
  /** Each evaluation reads one consistent snapshot of a view, as serving does. */
  readonly speed: Pick<SpeedLayer, 'withSnapshot'>;
  /** The speed layer's micro-batch interval: evaluations follow it, at most {@link MAX_EVALUATION_INTERVAL_MS} apart. */
  readonly intervalMs: number;
  readonly log?: (message: string) => void;
  /** The clock the state machine reads (ms since the epoch); injectable so a test can drive `for`. */
  readonly now?: () => number;
}

interface RuleState {
  readonly rule: AlertRule;
  timeKey: string | null;
  state: AlertState;
  since: number;
  value: number | null;
  bucket: number | null;
  evaluatedAt: number | null;
  /** The batch version and speed seqs of the last evaluation: the value cannot change until they do. */
  signature: string | null;
  error: string | null;
  /** The error last logged, so that a failure repeating every second is logged once. */
  logged: string | null;
  /** Oldest first. */
  events: AlertEventRecord[];
  /** Deliveries run one after another per rule, so a receiver hears `firing` before its `resolved`. */
  deliveries: Promise<void>;
  queued: number;
}

/**
 * Evaluates alert rules as the speed layer updates: every speed interval (at most a second apart), per view, one
 * snapshot is read (the batch version and exactly the speed partials past its W, as `GET /v1/views` sees them)
 * and each rule's value computed over it (rule-sql.ts); a snapshot that has not changed since the last
 * evaluation is not queried again. Each rule then steps its state machine (ok → pending → firing → ok) on the
 * clock, and its changes are POSTed to its webhook with retries (webhook.ts). State lives in memory: after a
 * restart every rule starts `ok`, and one whose condition still holds fires again.
 */
export class AlertEvaluator {
  private readonly states: RuleState[];
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly now: () => number;

  private constructor(private readonly options: AlertEvaluatorOptions) {
    this.now = options.now ?? Date.now;
    const started = this.now();
    this.states = options.rules.map((rule) => ({
      rule,
      timeKey: null,
      state: 'ok',
      since: started,
      value: null,
      bucket: null,
      evaluatedAt: null,
      signature: null,
      error: null,
      logged: null,
      events: [],
      deliveries: Promise.resolve(),
      queued: 0,
    }));
  }

  /**
   * Checks each rule against its view's column types (a numeric measure; a condition DuckDB can bind) and starts
   * the evaluations. Throws {@link ConfigError} naming every alert at fault.
   */
  static async open(options: AlertEvaluatorOptions): Promise<AlertEvaluator> {
    const evaluator = new AlertEvaluator(options);
    await evaluator.check();
    evaluator.schedule();
    return evaluator;
  }

  /** Every rule with its state, value and recent events, in declaration order. */
  status(): AlertStatus[] {
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return this.states.map((s) => {
      const { config } = s.rule;
      const events = [...s.events].reverse().map(copyRecord);
      return {
        name: config.name,
        view: config.view,
        measure: config.measure,
        where: config.where,
        condition: config.condition,
        threshold: config.threshold,
        forMs: config.forMs,
        layer: config.layer,
        timeKey: s.timeKey,
        webhook: new URL(config.notify.webhook).origin,
        state: s.state,
        since: iso(s.since)!,
        firesAt: s.state === 'pending' ? iso(s.since + config.forMs) : null,
        value: s.value,
        bucket: iso(s.bucket),
        evaluatedAt: iso(s.evaluatedAt),
        error: s.error,
        lastNotification: events[0] ?? null,
        events,
      };
    });
  }

  /** Runs one evaluation of every rule now (the schedule runs them by itself; tests call this to step). */
  evaluate(): Promise<void> {
    const next = this.running.then(() => this.evaluateAll());
    this.running = next.catch(() => undefined);
    return next;
  }

  /**
   * Stops evaluating, gives deliveries under way {@link CLOSE_GRACE_MS} to finish, then abandons the rest (a webhook
   * being retried), so that closing never waits long on a slow or failing receiver.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    const delivered = Promise.all(this.states.map((s) => s.deliveries));
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([delivered, new Promise((resolve) => (grace = setTimeout(resolve, CLOSE_GRACE_MS)))]);
    clearTimeout(grace);
    this.abort.abort();
    await delivered;
  }

  private byView(): Map<string, RuleState[]> {
    const views = new Map<string, RuleState[]>();
    for (const s of this.states) views.set(s.rule.view.name, [...(views.get(s.rule.view.name) ?? []), s]);
    return views;
  }

  private async check(): Promise<void> {
    const problems: string[] = [];
    for (const [view, states] of this.byView()) {
      await this.options.speed.withSnapshot(view, async (snapshot, connection) => {
        const reader = await connection.runAndReadAll(`SELECT * FROM (${mergeSql(snapshot.view, snapshot.empty)}) LIMIT 0`);
        const names = reader.columnNames();
        const types = new Map(reader.columnTypes().map((type, i) => [names[i]!, type.toString()]));
        // A view's time key: its first group-by column holding a timestamp or a date (the console's x axis too).
        const timeKey = snapshot.view.keys.find((key) => isTimeType(types.get(key.name) ?? ''))?.name ?? null;
        for (const s of states) {
          const at = `alerts.${s.rule.config.name}`;
          const type = types.get(s.rule.measure.name) ?? 'unknown';
          if (!isNumericType(type)) {
            problems.push(`${at}.measure: "${s.rule.measure.name}" is ${type}; an alert compares a number with its threshold`);
            continue;
          }
          s.timeKey = timeKey;
          try {
            // Over no rows, binding is checked (a column compared with a value of another type); over one row of
            // NULL keys, the constants too (`minute = 'soon'` fails only once a row is filtered).
            await connection.runAndReadAll(ruleValueSql(s.rule, snapshot.empty, timeKey));
            if (s.rule.whereSql !== null) {
              const nulls = snapshot.view.keys.map((key) => `CAST(NULL AS ${types.get(key.name)!}) AS ${quoteIdent(key.name)}`);
              await connection.runAndReadAll(`SELECT count(*) FROM (SELECT ${nulls.join(', ')}) AS keys WHERE ${s.rule.whereSql}`);
            }
          } catch (error) {
            problems.push(`${at}.where: ${(error as Error).message.split('\n')[0]}`);
          }
        }
      });
    }
    if (problems.length > 0) throw new ConfigError(`config: ${problems.join('; ')}`);
  }

  /**
   * Evaluates every `speed.intervalMs` (at most a second) from the start of the one before; an evaluation that
   * overruns is followed at once, and two never overlap.
   */
  private schedule(lastStart = Date.now()): void {
    if (this.closed || this.states.length === 0) return;
    const interval = Math.min(this.options.intervalMs, MAX_EVALUATION_INTERVAL_MS);
    this.timer = setTimeout(() => {
      const started = Date.now();
      void this.evaluate()
        .catch((error: unknown) => this.options.log?.(`alerts: ${(error as Error).message}`))
        .finally(() => this.schedule(started));
    }, Math.max(0, lastStart + interval - Date.now()));
    this.timer.unref();
  }

  private async evaluateAll(): Promise<void> {
    if (this.closed) return;
    const evaluated = new Set<RuleState>();
    for (const [view, states] of this.byView()) {
      try {
        await this.options.speed.withSnapshot(view, async (snapshot, connection) => {
          const signature = `${snapshot.batchVersion ?? 'none'}|${JSON.stringify(snapshot.speedSeq)}`;
          for (const s of states) {
            if (s.signature !== signature) {
              const ok = await this.read(s, s.rule.config.layer === 'speed' ? snapshot.speed : snapshot.merged, connection);
              if (!ok) continue;
              s.signature = signature;
            }
            evaluated.add(s);
          }
        });
      } catch (error) {
        for (const s of states) this.failed(s, error);
      }
    }
    const now = this.now();
    for (const s of evaluated) {
      s.evaluatedAt = now;
      this.step(s, now);
    }
  }

  /** Computes a rule's value over a layer's relations; false (the error recorded) when that fails. */
  private async read(s: RuleState, relations: PartialRelations, connection: DuckDBConnection): Promise<boolean> {
    try {
      const row = (await connection.runAndReadAll(ruleValueSql(s.rule, relations, s.timeKey))).getRows()[0];
      const value = row?.[0];
      const bucket = row?.[1];
      s.value = value === null || value === undefined ? null : Number(value);
      s.bucket = bucket === null || bucket === undefined ? null : Number(bucket);
      s.error = null;
      s.logged = null;
      return true;
    } catch (error) {
      this.failed(s, error);
      return false;
    }
  }

  private failed(s: RuleState, error: unknown): void {
    s.signature = null;
    s.error = error instanceof Error ? error.message : String(error);
    if (s.logged !== s.error) this.options.log?.(`alert "${s.rule.config.name}": evaluation failed: ${s.error}`);
    s.logged = s.error;
  }

  /** One step of the rule's state machine on the value just read. */
  private step(s: RuleState, now: number): void {
    const { config } = s.rule;
    const holds = s.value !== null && (config.condition === 'below' ? s.value < config.threshold : s.value > config.threshold);
    if (s.state === 'firing') {
      if (!holds) this.change(s, 'ok', now, 'resolved');
      return;
    }
    if (!holds) {
      if (s.state === 'pending') this.change(s, 'ok', now);
      return;
    }
    if (s.state === 'ok') this.change(s, 'pending', now);
    // `for` counts from the evaluation that first saw the condition hold; 0 fires on that same evaluation.
    if (now - s.since >= config.forMs) this.change(s, 'firing', now, 'firing');
  }

  private change(s: RuleState, state: AlertState, now: number, notify?: AlertEvent['state']): void {
    s.state = state;
    s.since = now;
    if (notify) this.notify(s, notify, now);
  }

  /** Records the event and queues its delivery behind the rule's earlier ones, within {@link MAX_QUEUED_EVENTS}. */
  private notify(s: RuleState, state: AlertEvent['state'], now: number): void {
    const { config } = s.rule;
    const event: AlertEvent = {
      alert: config.name,
      state,
      value: s.value,
      threshold: config.threshold,
      view: config.view,
      measure: config.measure,
      at: new Date(now).toISOString(),
    };
    const record: AlertEventRecord = {
      id: randomUUID(),
      event,
      delivery: { state: 'queued', attempts: 0, lastStatus: null, lastError: null, finishedAt: null },
    };
    s.events.push(record);
    if (s.events.length > EVENTS_KEPT) s.events.splice(0, s.events.length - EVENTS_KEPT);
    if (s.queued >= MAX_QUEUED_EVENTS) {
      record.delivery.state = 'dropped';
      record.delivery.lastError = `${MAX_QUEUED_EVENTS} earlier events of this alert are still waiting for the webhook`;
      record.delivery.finishedAt = event.at;
      this.options.log?.(`alert "${config.name}": ${state} event dropped: ${record.delivery.lastError}`);
      return;
    }
    s.queued++;
    s.deliveries = s.deliveries.then(async () => {
      await deliverWebhook(config.notify, JSON.stringify(event), { 'x-strata-event': record.id }, record.delivery, this.abort.signal);
      s.queued--;
      if (record.delivery.state === 'failed') {
        this.options.log?.(
          `alert "${config.name}": ${state} event not delivered after ${record.delivery.attempts} attempt(s): ${record.delivery.lastError}`,
        );
      }
    });
  }
}

/** A copy, so that an answer being serialized never sees a delivery change under it. */
function copyRecord(record: AlertEventRecord): AlertEventRecord {
  return { id: record.id, event: record.event, delivery: { ...record.delivery } };
}
