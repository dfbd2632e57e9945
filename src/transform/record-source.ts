import type { StreamConfig } from '../config/index.js';
import { emptySourceSql } from '../views/index.js';
import { duplicateRowsSql, newCopiesSql, QUARANTINE_REASON } from './clean-sql.js';
import type { DedupePlan, TransformPlan } from './compile-transform.js';

/**
 * The records a stream's views read, as both layers build them: the raw records when the stream declares no
 * transform, else its clean records (quarantined ones left out). The batch layer applies `recordsSql` to chunks
 * and the speed layer to each micro-batch, so both see the same clean records by construction.
 */
export interface RecordSource {
  readonly stream: string;
  /** The transform version the records are cleaned under; null without a transform. */
  readonly transformVersion: string | null;
  /** An empty relation with the columns views read, typed. */
  readonly emptySql: string;
  /** The records views read, from `raw`: SQL yielding the stream's fields as ingested (and any extra columns). */
  recordsSql(raw: string): string;
  /** The quarantined records of `raw`, with their raw values and `__quarantine_reason`; null without a transform. */
  quarantineSql(raw: string): string | null;
  /** The rules as declared, as JSON (maps as objects), for the catalog's transform versions; null without a transform. */
  readonly rulesJson: string | null;
  /** The stream's de-duplication, null without one. */
  readonly dedupe: DedupePlan | null;
  /**
   * The `identity` columns of the rows of `clean` (clean records carrying `__shard` and `__seq`) that
   * de-duplication leaves out; null without dedupe. See {@link dedupedSql} for which copy wins.
   */
  duplicateRowsSql(clean: string, identity: readonly string[]): string | null;
  /**
   * The new clean records of `fresh` (with `identity`) judged against the `counted` ones: per new record its
   * `identity`, `__duplicate` and `__displaced` (the `partition` column's value of the counted copy it displaces;
   * see {@link newCopiesSql}); null without dedupe.
   */
  newCopiesSql(fresh: string, counted: string | null, identity: readonly string[], partition: string): string | null;
  /**
   * The clean records of `raw` less the duplicates among them (first copy by event time, shard, seq wins; see
   * src/transform/index.ts); `raw` must carry `__shard` and `__seq`. Without dedupe, {@link recordsSql}.
   */
  dedupedSql(raw: string): string;
}

export function recordSource(stream: StreamConfig, plan: TransformPlan | null): RecordSource {
  if (plan === null) {
    return {
      stream: stream.name,
      transformVersion: null,
      emptySql: emptySourceSql(stream.fields),
      recordsSql: (raw) => raw,
      quarantineSql: () => null,
      rulesJson: null,
      dedupe: null,
      duplicateRowsSql: () => null,
      newCopiesSql: () => null,
      dedupedSql: (raw) => raw,
    };
  }
  const recordsSql = (raw: string) => `SELECT * EXCLUDE (${QUARANTINE_REASON}) FROM (${plan.cleanSql(raw)}) AS cleaned WHERE ${QUARANTINE_REASON} IS NULL`;
  return {
    stream: stream.name,
    transformVersion: plan.version,
    emptySql: plan.emptyCleanSql(),
    recordsSql,
    quarantineSql: (raw) => plan.quarantineSql(raw),
    rulesJson: JSON.stringify(plan.rules, (_key, value: unknown) => (value instanceof Map ? Object.fromEntries(value) : value)),
    dedupe: plan.dedupe,
    duplicateRowsSql: (clean, identity) =>
      plan.dedupe ? duplicateRowsSql(plan.dedupe.keys, plan.dedupe.eventTime, plan.dedupe.withinMs, clean, identity) : null,
    newCopiesSql: (fresh, counted, identity, partition) =>
      plan.dedupe ? newCopiesSql(plan.dedupe.keys, plan.dedupe.eventTime, plan.dedupe.withinMs, fresh, counted, identity, partition) : null,
    dedupedSql: (raw) => (plan.dedupe ? plan.dedupeSql(recordsSql(raw)) : recordsSql(raw)),
  };
}
