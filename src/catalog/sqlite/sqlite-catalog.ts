import Database from 'better-sqlite3';
import type { FieldSpec } from '../../config/index.js';
import { DuplicateImportError, NotFoundError, StrataError } from '../../errors.js';
import { diffSchemas } from '../schema-evolution.js';
import type {
  AuditEntry,
  AuditRow,
  SecurityStore,
  StoredToken,
  Catalog,
  ChunkInfo,
  CleanChunkInfo,
  NewCleanChunk,
  TransformVersionInfo,
  ChunkSnapshot,
  ImportRecord,
  NewViewVersion,
  NewChunkFile,
  PartitionInfo,
  SchemaChange,
  SchemaVersion,
  TableDetail,
  TableInfo,
  TableKind,
  ViewFile,
  ViewVersionInfo,
  Watermark,
} from '../types.js';

/** A token name that is taken already (409). */
export class TokenExistsError extends StrataError {
  override readonly name: string = 'TokenExistsError';
  readonly code = 'token_exists';
}

/** A broken catalog invariant (a delivery range that does not follow the last one): stop, never guess. */
export class CatalogInvariantError extends StrataError {
  override readonly name: string = 'CatalogInvariantError';
  readonly code = 'internal';
}

const MIGRATIONS = [
  `CREATE TABLE tables (
     name TEXT PRIMARY KEY,
     kind TEXT NOT NULL,
     created_at TEXT NOT NULL
   );
   CREATE TABLE schema_versions (
     table_name TEXT NOT NULL REFERENCES tables(name),
     version INTEGER NOT NULL,
     columns TEXT NOT NULL,
     change TEXT,
     created_at TEXT NOT NULL,
     PRIMARY KEY (table_name, version)
   );
   CREATE TABLE chunks (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     table_name TEXT NOT NULL REFERENCES tables(name),
     partition TEXT NOT NULL,
     key TEXT NOT NULL UNIQUE,
     shard INTEGER,
     first_seq INTEGER,
     last_seq INTEGER,
     rows INTEGER NOT NULL,
     bytes INTEGER NOT NULL,
     min_time TEXT,
     max_time TEXT,
     schema_version INTEGER NOT NULL,
     source TEXT NOT NULL,
     created_at TEXT NOT NULL
   );
   CREATE INDEX chunks_by_table ON chunks(table_name, partition);
   CREATE TABLE delivery (
     stream TEXT NOT NULL,
     shard INTEGER NOT NULL,
     delivered_seq INTEGER NOT NULL,
     updated_at TEXT NOT NULL,
     PRIMARY KEY (stream, shard)
   );
   CREATE TABLE imports (
     table_name TEXT NOT NULL,
     content_hash TEXT NOT NULL,
     source TEXT NOT NULL,
     created_at TEXT NOT NULL,
     PRIMARY KEY (table_name, content_hash)
   );`,
  // Batch view versions: each lists its files (new ones under views/<view>/v=<n>/, and older versions' files
  // it reuses); view_current names the version readers see.
  `CREATE TABLE view_versions (
     view TEXT NOT NULL,
     version INTEGER NOT NULL,
     watermark TEXT NOT NULL,
     max_import_chunk INTEGER NOT NULL,
     plan_hash TEXT NOT NULL,
     from_scratch INTEGER NOT NULL,
     created_at TEXT NOT NULL,
     PRIMARY KEY (view, version)
   );
   CREATE TABLE view_files (
     view TEXT NOT NULL,
     version INTEGER NOT NULL,
     relation TEXT NOT NULL,
     partition TEXT NOT NULL,
     key TEXT NOT NULL,
     rows INTEGER NOT NULL,
     bytes INTEGER NOT NULL,
     PRIMARY KEY (view, version, key),
     FOREIGN KEY (view, version) REFERENCES view_versions(view, version) ON DELETE CASCADE
   );
   CREATE INDEX view_files_by_key ON view_files(key);
   CREATE TABLE view_current (
     view TEXT PRIMARY KEY,
     version INTEGER NOT NULL,
     updated_at TEXT NOT NULL,
     FOREIGN KEY (view, version) REFERENCES view_versions(view, version)
   );`,
  // API tokens (only the SHA-256 of each, never the token) and the append-only audit log of src/security.
  `CREATE TABLE tokens (
     name TEXT PRIMARY KEY,
     hash TEXT NOT NULL UNIQUE,
     policies TEXT NOT NULL,
     created_at TEXT NOT NULL,
     last_used_at TEXT
   );
   CREATE TABLE audit (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     time TEXT NOT NULL,
     token TEXT,
     action TEXT NOT NULL,
     resource TEXT NOT NULL,
     outcome TEXT NOT NULL,
     route TEXT,
     client TEXT
   );`,
  // Each token's SCRAM-SHA-256 verifier (a salted hash, for the PostgreSQL listener); NULL for tokens made
  // before it was kept, which log in over the wire only by password over TLS until they are made again.
  `ALTER TABLE tokens ADD COLUMN scram TEXT;`,
  // Each token's text sealed under the server key (AES-256-GCM, src/security/server-key.ts), never in the clear:
  // AWS Signature V4 (the Kinesis API) needs the secret itself on the server. NULL for tokens made before.
  `ALTER TABLE tokens ADD COLUMN sealed_secret TEXT;`,
  // Transform versions, and the clean and quarantine files the batch layer writes from raw chunks under each,
  // with their lineage (the raw chunks each clean chunk comes from).
  `CREATE TABLE transform_versions (
     stream TEXT NOT NULL,
     version INTEGER NOT NULL,
     digest TEXT NOT NULL,
     rules TEXT NOT NULL,
     created_at TEXT NOT NULL,
     PRIMARY KEY (stream, version),
     UNIQUE (stream, digest)
   );
   CREATE TABLE clean_chunks (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     stream TEXT NOT NULL,
     transform_version INTEGER NOT NULL,
     partition TEXT NOT NULL,
     clean_key TEXT NOT NULL UNIQUE,
     clean_rows INTEGER NOT NULL,
     clean_bytes INTEGER NOT NULL,
     quarantine_key TEXT UNIQUE,
     quarantine_rows INTEGER NOT NULL,
     quarantine_bytes INTEGER NOT NULL,
     created_at TEXT NOT NULL
   );
   CREATE INDEX clean_chunks_by_stream ON clean_chunks(stream, transform_version);
   CREATE TABLE clean_lineage (
     clean_chunk INTEGER NOT NULL REFERENCES clean_chunks(id) ON DELETE CASCADE,
     raw_chunk INTEGER NOT NULL REFERENCES chunks(id),
     stream TEXT NOT NULL,
     transform_version INTEGER NOT NULL,
     PRIMARY KEY (stream, transform_version, raw_chunk)
   );`,
];

interface TransformVersionRow {
  stream: string;
  version: number;
  digest: string;
  rules: string;
  created_at: string;
}

const toTransformVersion = (row: TransformVersionRow): TransformVersionInfo => ({
  stream: row.stream,
  version: row.version,
  digest: row.digest,
  rules: row.rules,
  createdAt: row.created_at,
});

interface CleanChunkRow {
  id: number;
  stream: string;
  transform_version: number;
  partition: string;
  clean_key: string;
  clean_rows: number;
  clean_bytes: number;
  quarantine_key: string | null;
  quarantine_rows: number;
  quarantine_bytes: number;
  created_at: string;
}

interface ChunkRow {
  id: number;
  table_name: string;
  partition: string;
  key: string;
  shard: number | null;
  first_seq: number | null;
  last_seq: number | null;
  rows: number;
  bytes: number;
  min_time: string | null;
  max_time: string | null;
  schema_version: number;
  source: string;
  created_at: string;
}

const toChunk = (row: ChunkRow): ChunkInfo => ({
  id: row.id,
  table: row.table_name,
  partition: row.partition,
  key: row.key,
  shard: row.shard,
  firstSeq: row.first_seq,
  lastSeq: row.last_seq,
  rows: row.rows,
  bytes: row.bytes,
  minTime: row.min_time,
  maxTime: row.max_time,
  schemaVersion: row.schema_version,
  source: row.source,
  createdAt: row.created_at,
});

/**
 * The default catalog: one SQLite file (`<data>/catalog.db`) in WAL mode with `synchronous=FULL`, so a
 * committed registration survives a power cut. better-sqlite3 is synchronous; each method is one transaction.
 * Transactions that write begin IMMEDIATE: a deferred one that has read and then writes after another
 * connection (the delivery thread's) committed gets SQLITE_BUSY at once in WAL mode, past any busy timeout
 * ("database is locked", seen on an import beside delivery); one that takes the write lock first waits its turn.
 */
export class SqliteCatalog implements Catalog, SecurityStore {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    // Delivery registers chunks from its own thread and connection while imports register from the main one:
    // a writer that finds the database locked waits its turn instead of failing.
    this.db.pragma('busy_timeout = 10000');
    this.db.pragma('foreign_keys = ON');
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let i = version; i < MIGRATIONS.length; i++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[i]!);
        this.db.pragma(`user_version = ${i + 1}`);
      }).immediate();
    }
  }

  private now(): string {
    return new Date().toISOString();
  }

  private currentVersion(table: string): { version: number; columns: FieldSpec[] } | null {
    const row = this.db
      .prepare('SELECT version, columns FROM schema_versions WHERE table_name = ? ORDER BY version DESC LIMIT 1')
      .get(table) as { version: number; columns: string } | undefined;
    return row ? { version: row.version, columns: JSON.parse(row.columns) as FieldSpec[] } : null;
  }

  async ensureTable(name: string, kind: TableKind, columns: readonly FieldSpec[]): Promise<SchemaVersion> {
    return this.db.transaction((): SchemaVersion => {
      const existing = this.db.prepare('SELECT kind FROM tables WHERE name = ?').get(name) as { kind: string } | undefined;
      const now = this.now();
      if (!existing) this.db.prepare('INSERT INTO tables (name, kind, created_at) VALUES (?, ?, ?)').run(name, kind, now);
      else if (existing.kind !== kind) {
        throw new CatalogInvariantError(`table "${name}" is ${existing.kind}, not ${kind}`);
      }
      const current = this.currentVersion(name);
      let change: SchemaChange | null = null;
      if (current) {
        change = diffSchemas(name, current.columns, columns);
        if (change === null) {
          const row = this.db
            .prepare('SELECT created_at FROM schema_versions WHERE table_name = ? AND version = ?')
            .get(name, current.version) as { created_at: string };
          const previous = this.db
            .prepare('SELECT change FROM schema_versions WHERE table_name = ? AND version = ?')
            .get(name, current.version) as { change: string | null };
          return {
            version: current.version,
            columns: current.columns,
            change: previous.change ? (JSON.parse(previous.change) as SchemaChange) : null,
            createdAt: row.created_at,
          };
        }
      }
      const version = (current?.version ?? 0) + 1;
      this.db
        .prepare('INSERT INTO schema_versions (table_name, version, columns, change, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(name, version, JSON.stringify(columns), change ? JSON.stringify(change) : null, now);
      return { version, columns: [...columns], change, createdAt: now };
    }).immediate();
  }

  async tables(): Promise<TableInfo[]> {
    const names = this.db.prepare('SELECT name FROM tables ORDER BY name').all() as { name: string }[];
    return names.map(({ name }) => this.tableInfo(name)!);
  }

  private tableInfo(name: string): TableInfo | null {
    const table = this.db.prepare('SELECT name, kind, created_at FROM tables WHERE name = ?').get(name) as
      | { name: string; kind: TableKind; created_at: string }
      | undefined;
    if (!table) return null;
    const current = this.currentVersion(name)!;
    const totals = this.db
      .prepare('SELECT count(*) AS chunks, coalesce(sum(rows), 0) AS rows, coalesce(sum(bytes), 0) AS bytes FROM chunks WHERE table_name = ?')
      .get(name) as { chunks: number; rows: number; bytes: number };
    return {
      name: table.name,
      kind: table.kind,
      createdAt: table.created_at,
      schemaVersion: current.version,
      columns: current.columns,
      ...totals,
    };
  }

  async table(name: string): Promise<TableDetail | null> {
    const info = this.tableInfo(name);
    if (!info) return null;
    const versions = this.db
      .prepare('SELECT version, columns, change, created_at FROM schema_versions WHERE table_name = ? ORDER BY version')
      .all(name) as { version: number; columns: string; change: string | null; created_at: string }[];
    const partitions = this.db
      .prepare(
        `SELECT partition, count(*) AS chunks, sum(rows) AS rows, sum(bytes) AS bytes,
                min(min_time) AS minTime, max(max_time) AS maxTime
           FROM chunks WHERE table_name = ? GROUP BY partition ORDER BY partition`,
      )
      .all(name) as PartitionInfo[];
    return {
      ...info,
      schemaVersions: versions.map((v) => ({
        version: v.version,
        columns: JSON.parse(v.columns) as FieldSpec[],
        change: v.change ? (JSON.parse(v.change) as SchemaChange) : null,
        createdAt: v.created_at,
      })),
      partitions,
      chunkList: await this.chunks(name),
    };
  }

  async chunks(table: string): Promise<ChunkInfo[]> {
    return (this.db.prepare('SELECT * FROM chunks WHERE table_name = ? ORDER BY id').all(table) as ChunkRow[]).map(toChunk);
  }

  async deliveredSeq(stream: string, shard: number): Promise<number> {
    const row = this.db.prepare('SELECT delivered_seq FROM delivery WHERE stream = ? AND shard = ?').get(stream, shard) as
      | { delivered_seq: number }
      | undefined;
    return row?.delivered_seq ?? 0;
  }

  private insertChunks(table: string, files: readonly NewChunkFile[], extra: { shard: number | null; firstSeq: number | null; lastSeq: number | null; source: string }) {
    const current = this.currentVersion(table);
    if (!current) throw new NotFoundError(`unknown table "${table}"`);
    const insert = this.db.prepare(
      `INSERT INTO chunks (table_name, partition, key, shard, first_seq, last_seq, rows, bytes, min_time, max_time, schema_version, source, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const now = this.now();
    for (const file of files) {
      insert.run(
        table, file.partition, file.key, extra.shard, extra.firstSeq, extra.lastSeq, file.rows, file.bytes,
        file.minTime, file.maxTime, current.version, extra.source, now,
      );
    }
  }

  async commitDelivery(stream: string, shard: number, firstSeq: number, lastSeq: number, files: readonly NewChunkFile[]): Promise<void> {
    this.db.transaction(() => {
      const delivered = this.db
        .prepare('SELECT delivered_seq FROM delivery WHERE stream = ? AND shard = ?')
        .get(stream, shard) as { delivered_seq: number } | undefined;
      const expected = (delivered?.delivered_seq ?? 0) + 1;
      if (firstSeq !== expected || lastSeq < firstSeq) {
        throw new CatalogInvariantError(
          `delivery of ${stream}/${shard} seqs ${firstSeq}-${lastSeq} does not follow the delivered seq ${expected - 1}`,
        );
      }
      this.insertChunks(stream, files, { shard, firstSeq, lastSeq, source: 'delivery' });
      this.db
        .prepare(
          `INSERT INTO delivery (stream, shard, delivered_seq, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (stream, shard) DO UPDATE SET delivered_seq = excluded.delivered_seq, updated_at = excluded.updated_at`,
        )
        .run(stream, shard, lastSeq, this.now());
    }).immediate();
  }

  async hasImport(table: string, contentHash: string): Promise<boolean> {
    return this.db.prepare('SELECT 1 FROM imports WHERE table_name = ? AND content_hash = ?').get(table, contentHash) !== undefined;
  }

  async findImport(table: string, contentHash: string): Promise<ImportRecord | null> {
    const row = this.db
      .prepare('SELECT source, created_at FROM imports WHERE table_name = ? AND content_hash = ?')
      .get(table, contentHash) as { source: string; created_at: string } | undefined;
    return row ? { source: row.source, importedAt: row.created_at } : null;
  }

  async commitImport(table: string, contentHash: string, source: string, files: readonly NewChunkFile[]): Promise<void> {
    this.db.transaction(() => {
      const seen = this.db.prepare('SELECT source FROM imports WHERE table_name = ? AND content_hash = ?').get(table, contentHash) as
        | { source: string }
        | undefined;
      if (!seen) {
        this.db
          .prepare('INSERT INTO imports (table_name, content_hash, source, created_at) VALUES (?, ?, ?, ?)')
          .run(table, contentHash, source, this.now());
      }
      this.insertChunks(table, files, { shard: null, firstSeq: null, lastSeq: null, source: `import:${source}` });
    }).immediate();
  }

  async ensureTransformVersion(stream: string, digest: string, rules: string): Promise<TransformVersionInfo> {
    return this.db.transaction((): TransformVersionInfo => {
      const existing = this.db.prepare('SELECT * FROM transform_versions WHERE stream = ? AND digest = ?').get(stream, digest) as
        | TransformVersionRow
        | undefined;
      if (existing) return toTransformVersion(existing);
      const latest = this.db.prepare('SELECT max(version) AS v FROM transform_versions WHERE stream = ?').get(stream) as { v: number | null };
      const row: TransformVersionRow = { stream, version: (latest.v ?? 0) + 1, digest, rules, created_at: this.now() };
      this.db
        .prepare('INSERT INTO transform_versions (stream, version, digest, rules, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(row.stream, row.version, row.digest, row.rules, row.created_at);
      return toTransformVersion(row);
    }).immediate();
  }

  async transformVersions(stream: string): Promise<TransformVersionInfo[]> {
    const rows = this.db.prepare('SELECT * FROM transform_versions WHERE stream = ? ORDER BY version').all(stream) as TransformVersionRow[];
    return rows.map(toTransformVersion);
  }

  async cleanChunks(stream: string, transformVersion: number): Promise<CleanChunkInfo[]> {
    const rows = this.db.prepare('SELECT * FROM clean_chunks WHERE stream = ? AND transform_version = ? ORDER BY id').all(stream, transformVersion) as CleanChunkRow[];
    const lineage = this.db.prepare('SELECT clean_chunk, raw_chunk FROM clean_lineage WHERE stream = ? AND transform_version = ?').all(stream, transformVersion) as {
      clean_chunk: number;
      raw_chunk: number;
    }[];
    const raw = new Map<number, number[]>();
    for (const { clean_chunk, raw_chunk } of lineage) (raw.get(clean_chunk) ?? raw.set(clean_chunk, []).get(clean_chunk)!).push(raw_chunk);
    return rows.map((row) => ({
      id: row.id,
      stream: row.stream,
      transformVersion: row.transform_version,
      partition: row.partition,
      cleanKey: row.clean_key,
      cleanRows: row.clean_rows,
      cleanBytes: row.clean_bytes,
      quarantineKey: row.quarantine_key,
      quarantineRows: row.quarantine_rows,
      quarantineBytes: row.quarantine_bytes,
      rawChunks: (raw.get(row.id) ?? []).sort((a, b) => a - b),
      createdAt: row.created_at,
    }));
  }

  async lastCleanChunk(stream: string, transformVersion: number): Promise<number> {
    const row = this.db.prepare('SELECT max(id) AS id FROM clean_chunks WHERE stream = ? AND transform_version = ?').get(stream, transformVersion) as {
      id: number | null;
    };
    return row.id ?? 0;
  }

  async commitCleanChunks(chunks: readonly NewCleanChunk[]): Promise<void> {
    this.db.transaction(() => {
      const now = this.now();
      const insert = this.db.prepare(
        `INSERT INTO clean_chunks (stream, transform_version, partition, clean_key, clean_rows, clean_bytes, quarantine_key, quarantine_rows, quarantine_bytes, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      const link = this.db.prepare('INSERT INTO clean_lineage (clean_chunk, raw_chunk, stream, transform_version) VALUES (?, ?, ?, ?)');
      for (const chunk of chunks) {
        const { lastInsertRowid } = insert.run(
          chunk.stream,
          chunk.transformVersion,
          chunk.partition,
          chunk.cleanKey,
          chunk.cleanRows,
          chunk.cleanBytes,
          chunk.quarantineKey,
          chunk.quarantineRows,
          chunk.quarantineBytes,
          now,
        );
        for (const raw of chunk.rawChunks) link.run(lastInsertRowid, raw, chunk.stream, chunk.transformVersion);
      }
    }).immediate();
  }

  async dropCleanChunks(stream: string, keep: number): Promise<string[]> {
    return this.db.transaction((): string[] => {
      const rows = this.db
        .prepare('SELECT clean_key, quarantine_key FROM clean_chunks WHERE stream = ? AND transform_version <> ?')
        .all(stream, keep) as { clean_key: string; quarantine_key: string | null }[];
      this.db.prepare('DELETE FROM clean_chunks WHERE stream = ? AND transform_version <> ?').run(stream, keep);
      return rows.flatMap((row) => (row.quarantine_key === null ? [row.clean_key] : [row.clean_key, row.quarantine_key]));
    }).immediate();
  }

  async objectKeys(): Promise<Set<string>> {
    const rows = this.db
      .prepare(
        `SELECT key FROM chunks UNION SELECT key FROM view_files UNION SELECT clean_key FROM clean_chunks
         UNION SELECT quarantine_key FROM clean_chunks WHERE quarantine_key IS NOT NULL`,
      )
      .all() as { key: string }[];
    return new Set(rows.map((row) => row.key));
  }

  async snapshot(tables: readonly string[]): Promise<ChunkSnapshot> {
    // One transaction: in WAL mode its reads see one state, so no chunk registered meanwhile slips between
    // the chunk lists and the delivered seqs.
    return this.db.transaction((): ChunkSnapshot => {
      const chunks = new Map<string, ChunkInfo[]>();
      const select = this.db.prepare('SELECT * FROM chunks WHERE table_name = ? ORDER BY id');
      for (const table of tables) chunks.set(table, (select.all(table) as ChunkRow[]).map(toChunk));
      const delivered: Record<string, Record<string, number>> = {};
      for (const row of this.db.prepare('SELECT stream, shard, delivered_seq FROM delivery').all() as {
        stream: string;
        shard: number;
        delivered_seq: number;
      }[]) {
        (delivered[row.stream] ??= {})[String(row.shard)] = row.delivered_seq;
      }
      return { chunks, delivered };
    })();
  }

  async viewVersions(view: string): Promise<ViewVersionInfo[]> {
    const current = this.db.prepare('SELECT version FROM view_current WHERE view = ?').get(view) as { version: number } | undefined;
    const versions = this.db.prepare('SELECT * FROM view_versions WHERE view = ? ORDER BY version DESC').all(view) as {
      version: number;
      watermark: string;
      max_import_chunk: number;
      plan_hash: string;
      from_scratch: number;
      created_at: string;
    }[];
    const files = this.db.prepare(
      'SELECT relation, partition, key, rows, bytes FROM view_files WHERE view = ? AND version = ? ORDER BY relation, partition',
    );
    return versions.map((row) => ({
      view,
      version: row.version,
      watermark: JSON.parse(row.watermark) as Watermark,
      maxImportChunk: row.max_import_chunk,
      planHash: row.plan_hash,
      fromScratch: row.from_scratch === 1,
      createdAt: row.created_at,
      current: current?.version === row.version,
      files: files.all(view, row.version) as ViewFile[],
    }));
  }

  async currentViewVersions(): Promise<Map<string, number>> {
    const rows = this.db.prepare('SELECT view, version FROM view_current').all() as { view: string; version: number }[];
    return new Map(rows.map((row) => [row.view, row.version]));
  }

  async publishViewVersions(versions: readonly NewViewVersion[], keepVersions: number): Promise<string[]> {
    if (!(keepVersions >= 1)) throw new RangeError(`keepVersions must be at least 1, got ${keepVersions}`);
    return this.db.transaction((): string[] => {
      const now = this.now();
      const insertVersion = this.db.prepare(
        `INSERT INTO view_versions (view, version, watermark, max_import_chunk, plan_hash, from_scratch, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      );
      const insertFile = this.db.prepare(
        'INSERT INTO view_files (view, version, relation, partition, key, rows, bytes) VALUES (?, ?, ?, ?, ?, ?, ?)',
      );
      const dropped = new Set<string>();
      for (const v of versions) {
        const latest = this.db.prepare('SELECT max(version) AS v FROM view_versions WHERE view = ?').get(v.view) as { v: number | null };
        if (v.version <= (latest.v ?? 0)) {
          throw new CatalogInvariantError(`view "${v.view}" version ${v.version} does not follow version ${latest.v}`);
        }
        insertVersion.run(v.view, v.version, JSON.stringify(v.watermark), v.maxImportChunk, v.planHash, v.fromScratch ? 1 : 0, now);
        for (const file of v.files) insertFile.run(v.view, v.version, file.relation, file.partition, file.key, file.rows, file.bytes);
        this.db
          .prepare(
            `INSERT INTO view_current (view, version, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (view) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at`,
          )
          .run(v.view, v.version, now);
        const old = this.db
          .prepare('SELECT version FROM view_versions WHERE view = ? ORDER BY version DESC LIMIT -1 OFFSET ?')
          .all(v.view, keepVersions) as { version: number }[];
        for (const { version } of old) {
          const keys = this.db.prepare('SELECT key FROM view_files WHERE view = ? AND version = ?').all(v.view, version) as { key: string }[];
          for (const { key } of keys) dropped.add(key);
          this.db.prepare('DELETE FROM view_files WHERE view = ? AND version = ?').run(v.view, version);
          this.db.prepare('DELETE FROM view_versions WHERE view = ? AND version = ?').run(v.view, version);
        }
      }
      const stillListed = this.db.prepare('SELECT 1 FROM view_files WHERE key = ? LIMIT 1');
      return [...dropped].filter((key) => stillListed.get(key) === undefined);
    }).immediate();
  }

  async tokens(): Promise<StoredToken[]> {
    const rows = this.db.prepare('SELECT * FROM tokens ORDER BY name').all() as {
      name: string;
      hash: string;
      policies: string;
      created_at: string;
      last_used_at: string | null;
      scram: string | null;
      sealed_secret: string | null;
    }[];
    return rows.map((row) => ({
      name: row.name,
      hash: row.hash,
      policies: JSON.parse(row.policies) as string[],
      createdAt: row.created_at,
      lastUsedAt: row.last_used_at,
      scram: row.scram,
      sealedSecret: row.sealed_secret,
    }));
  }

  async addToken(token: StoredToken): Promise<void> {
    this.db.transaction(() => {
      if (this.db.prepare('SELECT 1 FROM tokens WHERE name = ?').get(token.name) !== undefined) {
        throw new TokenExistsError(`a token named "${token.name}" exists already; revoke it first or pick another name`);
      }
      this.db
        .prepare('INSERT INTO tokens (name, hash, policies, created_at, last_used_at, scram, sealed_secret) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(token.name, token.hash, JSON.stringify(token.policies), token.createdAt, token.lastUsedAt, token.scram, token.sealedSecret ?? null);
    }).immediate();
  }

  async removeToken(name: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM tokens WHERE name = ?').run(name).changes > 0;
  }

  async touchTokens(lastUsed: ReadonlyMap<string, string>): Promise<void> {
    const update = this.db.prepare('UPDATE tokens SET last_used_at = ? WHERE name = ?');
    this.db.transaction(() => {
      for (const [name, time] of lastUsed) update.run(time, name);
    }).immediate();
  }

  async appendAudit(entries: readonly AuditEntry[]): Promise<void> {
    const insert = this.db.prepare(
      'INSERT INTO audit (time, token, action, resource, outcome, route, client) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.db.transaction(() => {
      for (const e of entries) insert.run(e.time, e.token, e.action, e.resource, e.outcome, e.route, e.client);
    }).immediate();
  }

  async auditRows(afterId: number, limit: number): Promise<AuditRow[]> {
    return this.db.prepare('SELECT * FROM audit WHERE id > ? ORDER BY id LIMIT ?').all(afterId, limit) as AuditRow[];
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

export { DuplicateImportError };
