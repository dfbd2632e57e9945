import type { FastifyInstance } from 'fastify';
import type { ChunkInfo, TableDetail } from '../catalog/index.js';
import { NotFoundError } from '../errors.js';
import type { Strata } from '../strata.js';
import { principalOf } from './auth.js';

/**
 * The catalog over HTTP (the Glue Data Catalog's read side):
 *
 * - `GET /v1/catalog/tables` → `{"tables": [{"name", "kind", "createdAt", "schemaVersion", "columns":
 *   [{"name", "type", "nullable"}], "chunks", "rows", "bytes"}]}`.
 * - `GET /v1/catalog/tables/{table}` → one table as above, plus `schemaVersions` (`[{"version", "columns",
 *   "change": {"added", "widened", "relaxed"} | null, "createdAt"}]`), `partitions` (`[{"partition", "chunks",
 *   "rows", "bytes", "minTime", "maxTime"}]`) and `chunkList` (every file, oldest first); 404 for an unknown
 *   table. In chunks, `shard`, `firstSeq` and `lastSeq` are decimal strings, as offsets are everywhere in the
 *   API (a seq may outgrow 2^53); null for imported files. A stream with a transform also has `transform`:
 *   `{"current": N, "versions": [{"version", "digest", "rules", "createdAt"}], "cleanChunks": [{"id", "partition",
 *   "cleanKey", "cleanRows", "quarantineKey", "quarantineRows", "rawChunks": [raw chunk ids], ...}]}` (the
 *   clean chunks of the current version, with their lineage).
 */
export function registerCatalogRoutes(app: FastifyInstance, strata: Strata): void {
  // The tables the token may read (`read table:T`); the rest are left out.
  app.get('/v1/catalog/tables', async (request) => {
    const principal = principalOf(request);
    const tables = await strata.catalog.tables();
    return { tables: tables.filter((table) => strata.security.allows(principal, 'read', `table:${table.name}`)) };
  });

  app.get<{ Params: { table: string } }>('/v1/catalog/tables/:table', async (request) => {
    const table = await strata.catalog.table(request.params.table);
    if (!table) throw new NotFoundError(`unknown table "${request.params.table}"`);
    return { ...renderTable(table), ...(await transformOf(strata, table.name)) };
  });
}

function renderTable(table: TableDetail) {
  return { ...table, chunkList: table.chunkList.map(renderChunk) };
}

/** A stream's transform versions and the clean chunks of the current one; nothing for a table without a transform. */
async function transformOf(strata: Strata, table: string) {
  const current = strata.batch.transformVersion(table);
  if (current === null) return {};
  const versions = await strata.catalog.transformVersions(table);
  return {
    transform: {
      current,
      versions: versions.map((version) => ({ ...version, rules: JSON.parse(version.rules) as unknown })),
      cleanChunks: await strata.catalog.cleanChunks(table, current),
    },
  };
}

function renderChunk(chunk: ChunkInfo) {
  const decimal = (n: number | null) => (n === null ? null : String(n));
  return { ...chunk, shard: decimal(chunk.shard), firstSeq: decimal(chunk.firstSeq), lastSeq: decimal(chunk.lastSeq) };
}
