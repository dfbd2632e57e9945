import type { DuckDBConnection } from '@duckdb/node-api';
import type { DedupePlan } from '../transform/index.js';
import { DAY_MS, dayOf } from '../util/days.js';
import { quoteIdent } from '../util/duckdb.js';
import { CopyIndex, type CopyRow } from './copy-index.js';

/** Covered keys this far (beyond the window) behind the newest event time leave memory; a late copy reloads them. */
const KEEP_BEHIND_MS = DAY_MS;

/** Where the copies held end, for the records a new version covers beyond them: see {@link DedupeKeys.addCovered}. */
export interface CoveredSince {
  /** Per shard, the last seq the speed layer applied: only records past it are missing. */
  readonly seq: readonly number[];
  /** The last imported chunk the copies held include: only later imported chunks are missing. */
  readonly importChunk: number;
}

/**
 * The speed layer's side of de-duplication (architecture §7) for one view: every copy it may have to compare a
 * new record with, held in a {@link CopyIndex} (key fingerprint, event time, shard, seq, arrival order, covered).
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
 *
 * Keys are compared by a 128-bit fingerprint, two 64-bit DuckDB hashes of their text (a multi-column key as a JSON
 * list of its columns' texts), the second of the text with a byte appended: two different keys share one with a
 * probability of about n²/2¹²⁹, never in practice. (MD5 would do as well, at six times the cost: reading a day of
 * 400k copies took 1.05 s with it, 0.3 s now.) Text is what equality compares for every key type but DOUBLE, where
 * -0.0 and 0.0 are equal values with two texts.
 */
export class DedupeKeys {
  private readonly loadedDays = new Set<string>();
  private readonly copies: CopyIndex;
  private nextOrder = 1;
  private newest = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly connection: DuckDBConnection,
    private readonly plan: DedupePlan,
    /**
     * SQL of the covered records of one event-time day (with `since`, only those past it), or null when the lake
     * holds none at or below W.
     */
    private readonly coveredDay: (day: string, since?: CoveredSince) => Promise<string | null>,
  ) {
    this.copies = new CopyIndex(Math.round(plan.withinMs * 1000));
  }

  /**
   * Records the clean records of `micro` (a table of one micro-batch, with `__shard` and `__seq`) and answers
   * SQL of those to keep. `again` for a micro-batch computed again: its records keep their place in the order.
   */
  async keep(micro: string, again: boolean): Promise<string> {
    const rows: CopyRow[] = [];
    await this.readCopies(`SELECT * FROM ${micro}`, true, (row) => rows.push(row));
    let low = Infinity;
    let high = -Infinity;
    for (const row of rows) {
      if (Number.isNaN(row.timeUs)) continue;
      low = Math.min(low, row.timeUs / 1000);
      high = Math.max(high, row.timeUs / 1000);
    }
    if (low <= high) {
      this.newest = Math.max(this.newest, high);
      await this.loadDays(low - this.plan.withinMs, high + this.plan.withinMs);
    }
    // Orders by (shard, seq) within the micro-batch (rows come sorted so); only one computed again can hold
    // records seen before, which keep their order.
    const orders = rows.map((row, i) => (again ? this.copies.orderOf(row) : null) ?? this.nextOrder + i);
    rows.forEach((row, i) => {
      if (!again || !this.copies.holds(row)) this.copies.add(row, orders[i]!, false);
    });
    this.nextOrder += rows.length;
    const losers = rows.filter((row, i) => this.copies.givesWay(row, orders[i]!));
    if (losers.length === 0) return `SELECT * FROM ${micro}`;
    // The records that give way, appended to a table, and the others copied once for the view's relations.
    const table = `${micro}_losers`;
    await this.connection.run(`CREATE OR REPLACE TEMP TABLE ${quoteIdent(table)} ("__shard" INTEGER, "__seq" BIGINT)`);
    const appender = await this.connection.createAppender(table, 'main', 'temp');
    try {
      for (const { shard, seq } of losers) {
        appender.appendInteger(shard);
        appender.appendBigInt(BigInt(seq));
        appender.endRow();
      }
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
    const kept = quoteIdent(`${micro}_kept`);
    await this.connection.run(`CREATE OR REPLACE TEMP TABLE ${kept} AS SELECT * FROM ${micro} ANTI JOIN ${quoteIdent(table)} USING ("__shard", "__seq")`);
    return `SELECT * FROM ${kept}`;
  }

  /**
   * A new batch version covers the records at or below `watermark` (per shard). Answers the speed records
   * (shard, seq) past it whose decision may change: a copy now covered arrived after them, so they were kept
   * and must now give way.
   */
  async cover(watermark: readonly number[]): Promise<{ shard: number; seq: number }[]> {
    const giveWay = this.copies.cover(watermark);
    this.evict();
    return giveWay;
  }

  /**
   * A new version covers records the speed layer never applied (it was behind its W, or imports joined): adds
   * their copies to the days held, so that each stays whole. Only the records past `since` are read: forgetting
   * the days to load them again whole cost a full read of each at every adoption while the speed layer was
   * behind, which kept it behind (a restart under load: ack→visible p50 1.2 s in the lambda invariant test).
   */
  async addCovered(since: CoveredSince): Promise<void> {
    for (const day of this.loadedDays) {
      const sql = await this.coveredDay(day, since);
      if (sql !== null) await this.addCoveredCopies(sql);
    }
  }

  /** Forgets everything: the speed layer replays from W. */
  async clear(): Promise<void> {
    this.copies.clear();
    this.loadedDays.clear();
  }

  /** Bytes the copies take, for `strata status`. */
  get bytes(): number {
    return this.copies.bytes;
  }

  private async loadDays(fromMs: number, toMs: number): Promise<void> {
    for (let day = Math.floor(fromMs / DAY_MS) * DAY_MS; day <= toMs; day += DAY_MS) {
      const name = dayOf(day);
      if (this.loadedDays.has(name)) continue;
      const sql = await this.coveredDay(name);
      if (sql !== null) await this.addCoveredCopies(sql);
      this.loadedDays.add(name);
    }
  }

  /** Adds the copies of `sql`'s records, as read (a day may hold millions), but those held as speed copies. */
  private async addCoveredCopies(sql: string): Promise<void> {
    // The same record (key, shard and seq) is not added twice; imported records have no offsets.
    await this.readCopies(sql, false, (row) => {
      if (row.shard === -1 || !this.copies.holds(row)) this.copies.add(row, 0, true);
    });
  }

  private evict(): void {
    if (!Number.isFinite(this.newest)) return;
    const horizonDay = dayOf(this.newest - this.plan.withinMs - KEEP_BEHIND_MS);
    // Whole days only, so that a day is either loaded whole or not at all: copies before the horizon day's midnight (UTC).
    this.copies.evictCovered(Date.parse(`${horizonDay}T00:00:00Z`) * 1000);
    for (const day of this.loadedDays) if (day < horizonDay) this.loadedDays.delete(day);
  }

  /**
   * Visits the copies of the records of `sql` (with the key columns, the event time, `__shard` and `__seq`), read
   * chunk by chunk; `sorted` by shard and seq.
   */
  private async readCopies(sql: string, sorted: boolean, visit: (row: CopyRow) => void): Promise<void> {
    const keys = this.plan.keys.map(quoteIdent);
    const text = keys.length === 1 ? `CAST(${keys[0]} AS VARCHAR)` : `to_json([${keys.map((key) => `CAST(${key} AS VARCHAR)`).join(', ')}])`;
    const anyNull = keys.map((key) => `${key} IS NULL`).join(' OR ');
    const words = (hash: string) => `CAST(${hash} >> 32 AS UINTEGER), CAST(${hash} & 4294967295 AS UINTEGER)`;
    const result = await this.connection.stream(
      `SELECT ${words('h1')}, ${words('h2')}, epoch_us(t)::DOUBLE, s, q::DOUBLE
         FROM (SELECT CASE WHEN n THEN NULL ELSE hash(k) END AS h1, hash(k || chr(1)) AS h2, t, s, q
               FROM (SELECT ${text} AS k, ${anyNull} AS n, ${quoteIdent(this.plan.eventTime)} AS t, "__shard" AS s, "__seq" AS q FROM (${sql}) AS copies))${sorted ? ' ORDER BY s, q' : ''}`,
    );
    for (let chunk = await result.fetchChunk(); chunk !== null && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
      const [a, b, c, d, time, shard, seq] = Array.from({ length: 7 }, (_, i) => chunk.getColumnVector(i));
      for (let i = 0; i < chunk.rowCount; i++) {
        const first = a!.getItem(i) as number | null;
        visit({
          fingerprint: first === null ? null : [first, b!.getItem(i) as number, c!.getItem(i) as number, d!.getItem(i) as number],
          timeUs: (time!.getItem(i) as number | null) ?? NaN,
          shard: (shard!.getItem(i) as number | null) ?? -1,
          seq: (seq!.getItem(i) as number | null) ?? NaN,
        });
      }
    }
  }
}
