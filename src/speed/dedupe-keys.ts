import type { DuckDBConnection } from '@duckdb/node-api';
import type { DedupePlan, RecordSource } from '../transform/index.js';
import { DAY_MS, dayOf } from '../util/days.js';
import { quoteIdent } from '../util/duckdb.js';

/** Covered keys this far (beyond the window) behind the newest event time leave memory; a late copy reloads them. */
const KEEP_BEHIND_MS = DAY_MS;

/**
 * The speed layer's side of de-duplication (architecture §7) for one view: every copy it may have to compare a
 * new record with, as rows (key columns, event time, shard, seq, arrival order, covered) in its DuckDB.
 *
 * - Covered copies are records at or below the batch version's W, which the batch layer has already decided
 *   on. They are loaded from the lake one event-time day at a time, when a micro-batch's window first reaches
 *   that day, and dropped again once they are a day past the window behind the newest event time.
 * - Speed copies are the records past W the speed layer applied, numbered in the order it applied them.
 *
 * A speed record is kept unless another copy of its key lies within the window (either side in event time)
 * and is covered or was applied before it. So a key counts once across the layers: a copy the batch already
 * counted wins, and among speed copies the first to arrive. When a new version covers a copy that arrived
 * after a speed record it let through, that record's decision changes: {@link cover} names it, and the speed
 * layer recomputes its micro-batch. The batch layer orders copies by event time, shard and seq instead (it
 * sees them all at once); for retries, which are identical copies, the two agree on every value.
 */
export class DedupeKeys {
  private readonly loadedDays = new Set<string>();
  private nextOrder = 1;
  private newest = Number.NEGATIVE_INFINITY;

  private constructor(
    private readonly connection: DuckDBConnection,
    /** The table's name, unquoted: other names derive from it. */
    private readonly name: string,
    private readonly plan: DedupePlan,
    /** SQL of the covered records of one event-time day, or null when the lake holds none at or below W. */
    private readonly coveredDay: (day: string) => Promise<string | null>,
  ) {}

  static async create(
    connection: DuckDBConnection,
    name: string,
    source: RecordSource,
    coveredDay: (day: string) => Promise<string | null>,
  ): Promise<DedupeKeys> {
    const plan = source.dedupe!;
    const keys = plan.keys.map(quoteIdent).join(', ');
    await connection.run(
      `CREATE OR REPLACE TABLE ${quoteIdent(name)} AS SELECT ${keys}, ${quoteIdent(plan.eventTime)} AS "__ts", NULL::INTEGER AS "__shard",
         NULL::BIGINT AS "__seq", 0::BIGINT AS "__order", false AS "__covered" FROM (${source.emptySql}) WHERE false`,
    );
    return new DedupeKeys(connection, name, plan, coveredDay);
  }

  /**
   * Records the clean records of `micro` (a table of one micro-batch, with `__shard` and `__seq`) and answers
   * SQL of those to keep. `again` for a micro-batch computed again: its records keep their place in the order.
   */
  async keep(micro: string, again: boolean): Promise<string> {
    const time = quoteIdent(this.plan.eventTime);
    const span = (await this.connection.runAndReadAll(`SELECT epoch_ms(min(${time}))::DOUBLE AS low, epoch_ms(max(${time}))::DOUBLE AS high FROM ${micro}`))
      .getRowObjects()[0]!;
    if (span.low !== null && span.high !== null) {
      const low = Number(span.low);
      const high = Number(span.high);
      this.newest = Math.max(this.newest, high);
      await this.loadDays(low - this.plan.withinMs, high + this.plan.withinMs);
    }
    const keys = this.plan.keys.map(quoteIdent);
    const ordered = quoteIdent(`${micro}_ordered`);
    const order = `${this.nextOrder} + row_number() OVER (ORDER BY m."__shard", m."__seq")`;
    // Only a micro-batch computed again can hold records seen before: a new one skips the lookup.
    await this.connection.run(
      again
        ? `CREATE OR REPLACE TEMP TABLE ${ordered} AS SELECT m.*, coalesce(k."__order", ${order}) AS "__order", k."__order" IS NOT NULL AS "__known"
             FROM ${micro} AS m LEFT JOIN ${this.table} AS k ON k."__shard" = m."__shard" AND k."__seq" = m."__seq"`
        : `CREATE OR REPLACE TEMP TABLE ${ordered} AS SELECT m.*, ${order} AS "__order", false AS "__known" FROM ${micro} AS m`,
    );
    const added = (await this.connection.runAndReadAll(`SELECT count(*)::DOUBLE AS n FROM ${ordered}`)).getRowObjects()[0]!.n as number;
    this.nextOrder += added;
    await this.connection.run(
      `INSERT INTO ${this.table} SELECT ${keys.join(', ')}, ${time}, "__shard", "__seq", "__order", false FROM ${ordered} WHERE NOT "__known"`,
    );
    // The records that give way, found by a hash join on the key (the window and order are checked on the pairs).
    const same = keys.map((key) => `c.${key} = r.${key}`).join(' AND ');
    const losers = quoteIdent(`${micro}_losers`);
    await this.connection.run(
      `CREATE OR REPLACE TEMP TABLE ${losers} AS SELECT DISTINCT r."__shard", r."__seq" FROM ${ordered} AS r JOIN ${this.table} AS c ON ${same}
         WHERE r.${time} IS NOT NULL AND c."__ts" IS NOT NULL
           AND abs(epoch_us(c."__ts") - epoch_us(r.${time})) < ${Math.round(this.plan.withinMs * 1000)}
           AND NOT (c."__shard" IS NOT DISTINCT FROM r."__shard" AND c."__seq" IS NOT DISTINCT FROM r."__seq")
           AND (c."__covered" OR c."__order" < r."__order")`,
    );
    return `SELECT * EXCLUDE ("__order", "__known") FROM ${ordered} AS r
      WHERE NOT EXISTS (SELECT 1 FROM ${losers} AS l WHERE l."__shard" = r."__shard" AND l."__seq" = r."__seq")`;
  }

  /**
   * A new batch version covers the records at or below `watermark` (per shard). Answers the speed records
   * (shard, seq) past it whose decision may change: a copy now covered arrived after them, so they were kept
   * and must now give way.
   */
  async cover(watermark: readonly number[]): Promise<{ shard: number; seq: number }[]> {
    // Each row against its own shard's W, picked from a list by shard: one comparison per row instead of an OR
    // over every shard (600k copies of 4 shards: 18 ms to 4 ms). Copies without a shard (imported) are covered.
    const covered = `"__seq" <= ([${watermark.join(', ')}]::BIGINT[])["__shard" + 1]`;
    const fresh = quoteIdent(`${this.name}_newly_covered`);
    await this.connection.run(`CREATE OR REPLACE TEMP TABLE ${fresh} AS SELECT * FROM ${this.table} WHERE NOT "__covered" AND (${covered})`);
    await this.connection.run(`UPDATE ${this.table} SET "__covered" = true WHERE NOT "__covered" AND (${covered})`);
    const same = this.plan.keys.map(quoteIdent).map((key) => `c.${key} = r.${key}`).join(' AND ');
    const reader = await this.connection.runAndReadAll(
      `SELECT DISTINCT r."__shard" AS shard, r."__seq" AS seq FROM ${this.table} AS r JOIN ${fresh} AS c ON ${same}
         WHERE NOT r."__covered" AND c."__order" > r."__order" AND abs(epoch_us(c."__ts") - epoch_us(r."__ts")) < ${Math.round(this.plan.withinMs * 1000)}`,
    );
    await this.connection.run(`DROP TABLE IF EXISTS ${fresh}`);
    await this.evict();
    return reader.getRowObjects().map((row) => ({ shard: Number(row.shard), seq: Number(row.seq) }));
  }

  /**
   * Forgets the covered copies, to be loaded again from the lake as needed: when a version covers records the
   * speed layer never applied (it was behind, or imports joined), the copies held no longer include them all.
   */
  async forgetCovered(): Promise<void> {
    await this.connection.run(`DELETE FROM ${this.table} WHERE "__covered"`);
    this.loadedDays.clear();
  }

  /** Forgets everything: the speed layer replays from W. */
  async clear(): Promise<void> {
    await this.connection.run(`DELETE FROM ${this.table}`);
    this.loadedDays.clear();
  }

  private async loadDays(fromMs: number, toMs: number): Promise<void> {
    for (let day = Math.floor(fromMs / DAY_MS) * DAY_MS; day <= toMs; day += DAY_MS) {
      const name = dayOf(day);
      if (this.loadedDays.has(name)) continue;
      const sql = await this.coveredDay(name);
      if (sql !== null) {
        const keys = this.plan.keys.map(quoteIdent).join(', ');
        // A record held as a speed copy (shard, seq) is not loaded twice; imported records have no offsets.
        await this.connection.run(
          `INSERT INTO ${this.table} SELECT ${keys}, ${quoteIdent(this.plan.eventTime)}, "__shard", "__seq", 0, true FROM (${sql}) AS day
             WHERE "__shard" IS NULL OR NOT EXISTS (SELECT 1 FROM ${this.table} AS k WHERE k."__shard" = day."__shard" AND k."__seq" = day."__seq")`,
        );
      }
      this.loadedDays.add(name);
    }
  }

  private async evict(): Promise<void> {
    if (!Number.isFinite(this.newest)) return;
    const horizon = this.newest - this.plan.withinMs - KEEP_BEHIND_MS;
    const horizonDay = dayOf(horizon);
    // Whole days only, so that a day is either loaded whole or not at all: copies before the horizon day's
    // midnight (UTC, the connection's time zone), compared as timestamps rather than formatted row by row.
    await this.connection.run(`DELETE FROM ${this.table} WHERE "__covered" AND "__ts" < CAST('${horizonDay}' AS TIMESTAMP)`);
    for (const day of this.loadedDays) if (day < horizonDay) this.loadedDays.delete(day);
  }

  /** The table of the copies held, quoted (memory figures are per table). */
  get tableName(): string {
    return this.table;
  }

  private get table(): string {
    return quoteIdent(this.name);
  }
}
