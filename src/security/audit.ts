import { mkdir, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditEntry, SecurityStore } from '../catalog/index.js';
import type { DerivedTable } from '../sql/index.js';
import { sqlString } from '../util/duckdb.js';

/** The SQL table of the audit log; only admin tokens may read it. */
export const AUDIT_TABLE = 'strata_audit';

/** Entries buffered before a flush is forced; denied calls arrive in bursts, admin actions are flushed at once. */
const MAX_BUFFERED = 1_000;
/** How long a denied call may wait in the buffer before it is written. */
const FLUSH_DELAY_MS = 200;
/** Mirror segments before they are merged into one, so a query reads a bounded number of files. */
const MAX_SEGMENTS = 64;
/** Rows read from the catalog per step while writing a segment. */
const READ_PAGE = 10_000;

const COLUMNS =
  "{id: 'BIGINT', time: 'TIMESTAMP', token: 'VARCHAR', action: 'VARCHAR', resource: 'VARCHAR', outcome: 'VARCHAR', route: 'VARCHAR', client: 'VARCHAR'}";

/**
 * The audit log: every denied call and every admin action, appended to the catalog's `audit` table (time,
 * token name, action, resource, outcome, route pattern, client address; never a token or a record's content).
 *
 * SQL reads it as `strata_audit`. DuckDB cannot read SQLite here (no extensions may load), so the table is
 * mirrored as NDJSON under `<lake>/_audit/` (the only directory tree queries may read): each time the log grew
 * and a query comes, the new rows are written as one more immutable segment, and the view lists the segments.
 * A segment is never rewritten, so a query that is reading one is never cut short; past {@link MAX_SEGMENTS}
 * they are merged, and the merged-away files are deleted at the next merge. The mirror is rebuilt from the
 * catalog at every start.
 */
export class AuditLog {
  private buffer: AuditEntry[] = [];
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  /** Bumped at each write to the catalog: the SQL table's state. */
  private generation = 0;
  private mirroredId = 0;
  private segments: string[] = [];
  private retired: string[] = [];
  private closed = false;

  private constructor(
    private readonly store: SecurityStore,
    private readonly dir: string,
    private readonly now: () => number,
  ) {}

  static async open(store: SecurityStore, dir: string, now: () => number = Date.now): Promise<AuditLog> {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    return new AuditLog(store, dir, now);
  }

  /** Appends an entry; it reaches the catalog within {@link FLUSH_DELAY_MS} (or at once with {@link flush}). */
  record(entry: Omit<AuditEntry, 'time'>): void {
    if (this.closed) return;
    this.buffer.push({ time: new Date(this.now()).toISOString(), ...entry });
    if (this.buffer.length >= MAX_BUFFERED) void this.flush().catch(() => undefined);
    else this.timer ??= setTimeout(() => void this.flush().catch(() => undefined), FLUSH_DELAY_MS);
  }

  /** Appends an entry and waits until it is durable in the catalog: for admin actions. */
  async recordNow(entry: Omit<AuditEntry, 'time'>): Promise<void> {
    this.record(entry);
    await this.flush();
  }

  /** Writes the buffered entries to the catalog in one transaction. */
  async flush(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const entries = this.buffer;
    this.buffer = [];
    // One write at a time, in order: the catalog's ids follow the order entries were recorded in.
    this.writing = this.writing.then(async () => {
      if (entries.length === 0) return;
      await this.store.appendAudit(entries);
      this.generation++;
    });
    await this.writing;
  }

  /** `strata_audit` for the SQL engine: its state changes whenever the log grew. */
  derivedTable(): DerivedTable {
    return { name: AUDIT_TABLE, state: String(this.generation), sql: () => this.mirror() };
  }

  /** The audit table's rows, written to the catalog first: what `strata_audit` is as of now. */
  async derivedTables(): Promise<DerivedTable[]> {
    await this.flush();
    return [this.derivedTable()];
  }

  /** Brings the NDJSON mirror up to date and answers the SQL of the table over it. */
  private async mirror(): Promise<string> {
    const fresh = await this.writeRows(this.mirroredId);
    if (fresh !== null) {
      this.segments.push(fresh.path);
      this.mirroredId = fresh.lastId;
    }
    if (this.segments.length > MAX_SEGMENTS) {
      const merged = await this.writeRows(0);
      await Promise.all(this.retired.map((path) => unlink(path).catch(() => undefined)));
      this.retired = this.segments;
      this.segments = merged === null ? [] : [merged.path];
    }
    if (this.segments.length === 0) {
      return `SELECT * FROM (VALUES (NULL::BIGINT, NULL::TIMESTAMP, NULL, NULL, NULL, NULL, NULL, NULL)) AS audit(id, time, token, action, resource, outcome, route, client) WHERE false`;
    }
    return `SELECT * FROM read_json([${this.segments.map(sqlString).join(', ')}], format = 'newline_delimited', columns = ${COLUMNS}) ORDER BY id`;
  }

  /** Writes the rows after `afterId` as one new NDJSON file; null when there are none. */
  private async writeRows(afterId: number): Promise<{ path: string; lastId: number } | null> {
    const lines: string[] = [];
    let lastId = afterId;
    for (;;) {
      const rows = await this.store.auditRows(lastId, READ_PAGE);
      for (const row of rows) lines.push(JSON.stringify(row));
      if (rows.length > 0) lastId = rows[rows.length - 1]!.id;
      if (rows.length < READ_PAGE) break;
    }
    if (lines.length === 0) return null;
    const path = join(this.dir, `audit-${afterId + 1}-${lastId}.ndjson`);
    await writeFile(path, `${lines.join('\n')}\n`);
    return { path, lastId };
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }
}
