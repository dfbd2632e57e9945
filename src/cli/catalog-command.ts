import { Command } from 'commander';
import { getJson } from './server-client.js';
import { formatBytes } from './status-command.js';
import { renderTextTable } from './text-table.js';

interface Column {
  name: string;
  type: string;
  nullable: boolean;
}

interface TableSummary {
  name: string;
  kind: string;
  createdAt: string;
  schemaVersion: number;
  columns: Column[];
  chunks: number;
  rows: number;
  bytes: number;
}

interface TableDetailAnswer extends TableSummary {
  schemaVersions: {
    version: number;
    columns: Column[];
    change: { added: string[]; widened: { column: string; from: string; to: string }[]; relaxed: string[] } | null;
    createdAt: string;
  }[];
  transform?: {
    current: number;
    versions: { version: number; digest: string; createdAt: string }[];
    cleanChunks: { id: number; partition: string; cleanRows: number; quarantineRows: number; rawChunks: number[] }[];
  };
  partitions: { partition: string; chunks: number; rows: number; bytes: number; minTime: string | null; maxTime: string | null }[];
  chunkList: {
    id: number;
    partition: string;
    key: string;
    shard: string | null;
    firstSeq: string | null;
    lastSeq: string | null;
    rows: number;
    bytes: number;
    schemaVersion: number;
    source: string;
    createdAt: string;
  }[];
}

/** Chunks listed in the text output of one table; `--json` lists them all. */
const CHUNKS_SHOWN = 20;

const count = (n: number) => n.toLocaleString('en-US');
const showType = (column: Column) => `${column.type}${column.nullable ? '?' : ''}`;

/** `strata catalog [TABLE]`: the tables of a running Strata, or one table's schema history, partitions and chunks. */
export function catalogCommand(): Command {
  return new Command('catalog')
    .description('list the tables of the lake (rows, chunks, bytes), or one table: schema versions, partitions, chunks')
    .argument('[table]', 'a table to describe')
    .option('--url <url>', 'base URL of the Strata HTTP API', 'http://127.0.0.1:7070')
    .option('--json', 'print the JSON answer of GET /v1/catalog/tables[/TABLE]')
    .addHelpText(
      'after',
      ['', 'Examples:', '  strata catalog', '  strata catalog clicks', '  strata catalog clicks --json --url http://127.0.0.1:7070'].join('\n'),
    )
    .action(async (table: string | undefined, options: { url: string; json?: boolean }) => {
      if (table === undefined) {
        const answer = await getJson<{ tables: TableSummary[] }>(options.url, '/v1/catalog/tables');
        console.log(options.json ? JSON.stringify(answer, null, 2) : renderTables(answer.tables));
      } else {
        const answer = await getJson<TableDetailAnswer>(options.url, `/v1/catalog/tables/${encodeURIComponent(table)}`);
        console.log(options.json ? JSON.stringify(answer, null, 2) : renderTable(answer));
      }
    });
}

/** The table list as `strata catalog` prints it. */
export function renderTables(tables: readonly TableSummary[]): string {
  if (tables.length === 0) return 'no tables yet';
  return renderTextTable(
    ['table', 'kind', 'schema', 'columns', 'chunks', 'rows', 'bytes'],
    tables.map((t) => [t.name, t.kind, `v${t.schemaVersion}`, String(t.columns.length), count(t.chunks), count(t.rows), formatBytes(t.bytes)]),
    ['left', 'left', 'left', 'right', 'right', 'right', 'right'],
  );
}

/** One table as `strata catalog TABLE` prints it. */
export function renderTable(table: TableDetailAnswer): string {
  const out: string[] = [
    `table ${table.name} (${table.kind}): schema v${table.schemaVersion}, ${count(table.chunks)} chunks, ` +
      `${count(table.rows)} rows, ${formatBytes(table.bytes)}`,
    '',
    'columns:',
    indent(renderTextTable(['column', 'type'], table.columns.map((column) => [column.name, showType(column)]))),
    '',
    'schema versions:',
    indent(
      renderTextTable(
        ['version', 'created', 'change'],
        table.schemaVersions.map((version) => [`v${version.version}`, version.createdAt, describeChange(version)]),
      ),
    ),
    '',
    'partitions:',
  ];
  out.push(
    table.partitions.length === 0
      ? '  none yet'
      : indent(
          renderTextTable(
            ['dt', 'chunks', 'rows', 'bytes', 'first event', 'last event'],
            table.partitions.map((p) => [p.partition, count(p.chunks), count(p.rows), formatBytes(p.bytes), p.minTime ?? '', p.maxTime ?? '']),
            ['left', 'right', 'right', 'right', 'left', 'left'],
          ),
        ),
  );
  const shown = table.chunkList.slice(-CHUNKS_SHOWN);
  out.push(
    '',
    table.chunkList.length > shown.length
      ? `chunks (the newest ${shown.length} of ${count(table.chunkList.length)}; --json lists all):`
      : 'chunks:',
  );
  out.push(
    shown.length === 0
      ? '  none yet'
      : indent(
          renderTextTable(
            ['id', 'dt', 'shard', 'seqs', 'rows', 'bytes', 'schema', 'key'],
            shown.map((c) => [
              String(c.id),
              c.partition,
              c.shard ?? '',
              c.firstSeq === null ? c.source : `${c.firstSeq}-${c.lastSeq}`,
              count(c.rows),
              formatBytes(c.bytes),
              `v${c.schemaVersion}`,
              c.key,
            ]),
            ['right', 'left', 'right', 'left', 'right', 'right', 'left', 'left'],
          ),
        ),
  );
  if (table.transform) {
    const { current, versions, cleanChunks } = table.transform;
    const clean = cleanChunks.reduce((sum, chunk) => sum + chunk.cleanRows, 0);
    const quarantined = cleanChunks.reduce((sum, chunk) => sum + chunk.quarantineRows, 0);
    const raw = cleanChunks.reduce((sum, chunk) => sum + chunk.rawChunks.length, 0);
    out.push(
      '',
      'transform versions:',
      indent(renderTextTable(['version', 'created', 'digest'], versions.map((v) => [`t${v.version}${v.version === current ? ' (current)' : ''}`, v.createdAt, v.digest]))),
      '',
      `clean chunks of t${current}: ${count(cleanChunks.length)} from ${count(raw)} raw chunks, ${count(clean)} clean and ${count(quarantined)} quarantined rows`,
    );
  }
  return out.join('\n');
}

function describeChange(version: TableDetailAnswer['schemaVersions'][number]): string {
  if (version.change === null) return `created: ${version.columns.map((column) => `${column.name} ${showType(column)}`).join(', ')}`;
  const typeOf = new Map(version.columns.map((column) => [column.name, showType(column)]));
  const parts = [
    ...version.change.added.map((name) => `added ${name} ${typeOf.get(name) ?? ''}`.trimEnd()),
    ...version.change.widened.map((w) => `widened ${w.column} ${w.from} → ${w.to}`),
    ...version.change.relaxed.map((name) => `${name} now nullable`),
  ];
  return parts.join('; ');
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}
