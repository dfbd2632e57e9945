/**
 * Transforms (architecture §7, issue 5): a stream's cleansing rules, declared once in its config, compiled into SQL
 * that the batch layer runs over raw chunks and the speed layer over each micro-batch, in DuckDB both, so that both
 * see the same clean records.
 *
 * Rule order, per record (cleanSql):
 * 1. `defaults`: a NULL field takes its default. The default then goes through the next steps like any value (with
 *    `upper` on country, the default "unknown" is stored as "UNKNOWN").
 * 2. `standardize`: each field's operations in the order listed: `trim` (ASCII whitespace and the no-break space at
 *    both ends), `collapse_spaces` (each run of whitespace inside becomes one space), `lower`, `upper`,
 *    `null_if_empty` ('' becomes NULL), `utc`. On a timestamp field `utc` changes nothing: ingest already stores
 *    every timestamp as UTC (an offset is applied, text without one is read as UTC), so the rule only states the
 *    intent. On a string field, `utc` parses the text by those same ingest rules into a UTC timestamp (the clean
 *    column is a timestamp; sub-microsecond digits are dropped); text that is not a timestamp quarantines the record.
 * 3. `map`: a string field's value, compared after standardization (write the keys as standardized), is replaced;
 *    an entry mapping to null makes the value missing.
 * 4. `required`: checked on the values after the three steps above, so a default satisfies it, and `null_if_empty`
 *    or a map to null can fail it. A default is not applied again after step 2 or 3.
 * 5. `derive`: each new column, in declaration order, from a SQL scalar expression over the clean fields and the
 *    derived columns before it; the output type is DuckDB's. An expression that fails on a record (a bad cast)
 *    quarantines that record instead of failing the query. A record already quarantined gets NULL derived values.
 * A record is quarantined with the first failure in that order: a `utc` conversion (fields in schema order,
 * `standardize: ts could not be converted`), then a missing required field (in the order `required` lists them,
 * `required: user_id is missing`), then a derived column (`derive: revenue_cents could not be computed`).
 * Quarantined records are never dropped: quarantineSql gives them with their raw values and the reason.
 *
 * De-duplication (dedupeSql), over clean records only (a quarantined copy does not count):
 * - Copies of a key are ordered by event time, then `__shard`, then `__seq`. A copy is a duplicate, and dropped,
 *   when the copy just before it in that order is less than `within` earlier in event time; otherwise it is kept.
 *   So the first copy wins, a retry with the same event time is caught however late it arrives, and a copy whose
 *   event time is `within` or more after the copy before it is kept as a new record. Because "the copy before it"
 *   may itself be a dropped duplicate, copies every 20 hours under a 24h window are all one record.
 * - Event time, not arrival, measures the window: a record carries it, so a from-scratch run and an incremental
 *   one judge a copy alike, and the copies that can precede a record lie in [t - within, t], a bounded range of
 *   event-time partitions (the speed layer can look them up there). Arrival order exists only within a shard.
 * - A record whose key has a NULL part, or whose event time is NULL, has no identity to compare and is kept.
 * - Caveat for the layers: copies that differ in event time and arrive out of order across a batch run may make the
 *   incremental result keep another copy than a from-scratch run would, until the next batch run covers both; for
 *   retries (identical copies) the results are the same. To count such a key once meanwhile, the speed layer should
 *   drop a new copy when the published clean records hold a copy of its key within the window either side.
 */
export {
  compileTransform,
  compileTransforms,
  type CleanColumn,
  type DedupePlan,
  type TransformPlan,
  type TransformVersion,
} from './compile-transform.js';
export { DEDUPE_TIE_BREAK, QUARANTINE_REASON } from './clean-sql.js';
export { recordSource, type RecordSource } from './record-source.js';
export { cleanTableName, quarantineTableName } from './transform-tables.js';
export { QuarantineCounts } from './quarantine-counts.js';
