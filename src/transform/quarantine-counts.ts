import { quoteIdent } from '../util/duckdb.js';
import type { RecordSource } from './record-source.js';
import { quarantineTableName } from './transform-tables.js';

/** Counts are refreshed at most this often, and only when the lake's rows changed. */
const REFRESH_MS = 10_000;

/**
 * How many of a stream's records its transform quarantines, for `GET /v1/streams`, `strata status`, the console
 * and /metrics. The count is of the delivered records (the `<stream>__quarantine` SQL table: the quarantine chunks
 * of the current transform version plus the rules over records delivered since the last batch run), so it always
 * follows the current rules; records still in the log past delivery are counted once delivered. A count is kept
 * until the lake's rows change and at least ten seconds passed.
 */
export class QuarantineCounts {
  private readonly cached = new Map<string, { rows: number; at: number; count: number }>();
  private readonly pending = new Map<string, Promise<number>>();

  constructor(
    private readonly sources: ReadonlyMap<string, RecordSource>,
    /** Runs an internal, read-only count query and answers its single number. */
    private readonly count: (sql: string) => Promise<number>,
  ) {}

  /** The stream's quarantined records as of its lake's `rows`; null for a stream without a transform. */
  async of(stream: string, rows: number): Promise<number | null> {
    const source = this.sources.get(stream);
    if (!source || source.transformVersion === null) return null;
    const held = this.cached.get(stream);
    if (held && (held.rows === rows || Date.now() - held.at < REFRESH_MS)) return held.count;
    let running = this.pending.get(stream);
    if (!running) {
      running = this.count(`SELECT count(*) AS n FROM ${quoteIdent(quarantineTableName(stream))}`)
        .then((count) => {
          this.cached.set(stream, { rows, at: Date.now(), count });
          return count;
        })
        .finally(() => this.pending.delete(stream));
      this.pending.set(stream, running);
    }
    return running;
  }
}
