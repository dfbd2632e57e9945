import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir, type RunningStrata } from '../fixtures/strata.js';
import { pgClient, startWithPg } from './helpers.js';

/**
 * The catalog queries Grafana's and Metabase's PostgreSQL connectors send before any user query, in the shapes
 * their sources build them (Grafana: public/app/plugins/datasource/grafana-postgresql-datasource/
 * postgresMetaQuery.ts; Metabase: src/metabase/driver/postgres.clj, through the JDBC driver as prepared
 * statements with parameters). The test runs them as those clients do and checks the answers list Strata's
 * tables and columns with PostgreSQL's type names.
 */
const SEARCH_PATH_SCHEMAS = `quote_ident(table_schema) IN (
  SELECT CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
  FROM generate_series(
         array_lower(string_to_array(current_setting('search_path'),','),1),
         array_upper(string_to_array(current_setting('search_path'),','),1)
       ) as i,
       string_to_array(current_setting('search_path'),',') s)`;

const GRAFANA = {
  version: "SELECT current_setting('server_version_num')::int/100 as version",
  timescale: "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'",
  schemas: `SELECT schema_name AS "name" FROM information_schema.schemata
            WHERE schema_name NOT IN ('information_schema', 'pg_catalog', 'pg_toast', '_timescaledb_cache', '_timescaledb_catalog')
            ORDER BY schema_name`,
  tables: `SELECT CASE WHEN ${SEARCH_PATH_SCHEMAS} THEN quote_ident(table_name) ELSE quote_ident(table_schema) || '.' || quote_ident(table_name) END AS "table"
           FROM information_schema.tables
           WHERE quote_ident(table_schema) NOT IN ('information_schema', 'pg_catalog', '_timescaledb_cache', '_timescaledb_catalog')
           ORDER BY CASE WHEN ${SEARCH_PATH_SCHEMAS} THEN 0 ELSE 1 END, 1`,
  columns: `SELECT quote_ident(column_name) AS "column", data_type AS "type" FROM information_schema.columns
            WHERE CASE WHEN array_length(parse_ident('clicks'),1) = 2
                    THEN quote_ident(table_schema) = (parse_ident('clicks'))[1] AND quote_ident(table_name) = (parse_ident('clicks'))[2]
                    ELSE quote_ident(table_name) = 'clicks' AND ${SEARCH_PATH_SCHEMAS}
                  END`,
};

const METABASE = {
  tables: `SELECT "n"."nspname" AS "schema", "c"."relname" AS "name",
             CASE "c"."relkind" WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END AS "type",
             "d"."description" AS "description", "stat"."n_live_tup" AS "estimated_row_count"
           FROM "pg_catalog"."pg_class" AS "c"
           INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "c"."relnamespace" = "n"."oid"
           LEFT JOIN "pg_catalog"."pg_description" AS "d" ON ("c"."oid" = "d"."objoid") AND ("d"."objsubid" = 0) AND ("d"."classoid" = 'pg_class'::regclass)
           LEFT JOIN "pg_stat_user_tables" AS "stat" ON ("n"."nspname" = "stat"."schemaname") AND ("c"."relname" = "stat"."relname")
           WHERE ("c"."relnamespace" = "n"."oid") AND ("n"."nspname" !~ $1) AND ("n"."nspname" <> $2) AND c.relkind in ('r', 'p', 'v', 'f', 'm') AND ("n"."nspname" IN ($3))
           ORDER BY "type" ASC, "schema" ASC, "name" ASC`,
  fields: `SELECT "c"."column_name" AS "name",
             CASE WHEN "c"."udt_schema" IN ('public', 'pg_catalog') THEN FORMAT('%s', "c"."udt_name") ELSE FORMAT('"%s"."%s"', "c"."udt_schema", "c"."udt_name") END AS "database-type",
             "c"."ordinal_position" - 1 AS "database-position", "c"."table_schema" AS "table-schema", "c"."table_name" AS "table-name",
             "pk"."column_name" IS NOT NULL AS "pk?",
             COL_DESCRIPTION(CAST(CAST(FORMAT('%I.%I', CAST("c"."table_schema" AS TEXT), CAST("c"."table_name" AS TEXT)) AS REGCLASS) AS OID), "c"."ordinal_position") AS "field-comment",
             (("column_default" IS NULL) OR (LOWER("column_default") = 'null')) AND ("is_nullable" = 'NO') AND NOT ((("column_default" IS NOT NULL) AND ("column_default" LIKE '%nextval(%')) OR ("is_identity" <> 'NO')) AS "database-required"
           FROM "information_schema"."columns" AS "c"
           LEFT JOIN (SELECT "tc"."table_schema", "tc"."table_name", "kc"."column_name"
                      FROM "information_schema"."table_constraints" AS "tc"
                      INNER JOIN "information_schema"."key_column_usage" AS "kc" ON ("tc"."constraint_name" = "kc"."constraint_name") AND ("tc"."table_schema" = "kc"."table_schema") AND ("tc"."table_name" = "kc"."table_name")
                      WHERE "tc"."constraint_type" = 'PRIMARY KEY') AS "pk"
             ON ("c"."table_schema" = "pk"."table_schema") AND ("c"."table_name" = "pk"."table_name") AND ("c"."column_name" = "pk"."column_name")
           WHERE c.table_schema !~ '^information_schema|catalog_history|pg_' AND ("c"."table_schema" IN ($1)) AND ("c"."table_name" IN ($2))
           UNION ALL
           SELECT "pa"."attname", CASE WHEN "ptn"."nspname" IN ('public', 'pg_catalog') THEN FORMAT('%s', "pt"."typname") ELSE FORMAT('"%s"."%s"', "ptn"."nspname", "pt"."typname") END,
             "pa"."attnum" - 1, "pn"."nspname", "pc"."relname", FALSE, NULL, FALSE
           FROM "pg_catalog"."pg_class" AS "pc"
           INNER JOIN "pg_catalog"."pg_namespace" AS "pn" ON "pn"."oid" = "pc"."relnamespace"
           INNER JOIN "pg_catalog"."pg_attribute" AS "pa" ON "pa"."attrelid" = "pc"."oid"
           INNER JOIN "pg_catalog"."pg_type" AS "pt" ON "pt"."oid" = "pa"."atttypid"
           INNER JOIN "pg_catalog"."pg_namespace" AS "ptn" ON "ptn"."oid" = "pt"."typnamespace"
           WHERE ("pc"."relkind" = 'm') AND ("pa"."attnum" >= 1) AND ("pn"."nspname" IN ($3)) AND ("pc"."relname" IN ($4))
           ORDER BY "table-schema" ASC, "table-name" ASC, "database-position" ASC`,
  privileges: `with table_privileges as (
     select NULL as role, t.schemaname as schema, t.objectname as table,
       pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"', 'select') as select,
       pg_catalog.has_table_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"', 'delete') as delete
     from (select schemaname, tablename as objectname from pg_catalog.pg_tables
           union select schemaname, viewname as objectname from pg_catalog.pg_views
           union select schemaname, matviewname as objectname from pg_catalog.pg_matviews) t
     where t.schemaname !~ '^pg_' and t.schemaname <> 'information_schema'
       and pg_catalog.has_schema_privilege(current_user, t.schemaname, 'usage'))
   select t.* from table_privileges t`,
  indexes: `SELECT "tmp"."table-schema", "tmp"."table-name", TRIM(BOTH '"' FROM PG_CATALOG.PG_GET_INDEXDEF("tmp"."ci_oid", "tmp"."pos", FALSE)) AS "field-name"
            FROM (SELECT "n"."nspname" AS "table-schema", "ct"."relname" AS "table-name", "ci"."oid" AS "ci_oid", (INFORMATION_SCHEMA._PG_EXPANDARRAY("i"."indkey")).N AS "pos"
                  FROM "pg_catalog"."pg_class" AS "ct"
                  INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "ct"."relnamespace" = "n"."oid"
                  INNER JOIN "pg_catalog"."pg_index" AS "i" ON "ct"."oid" = "i"."indrelid"
                  INNER JOIN "pg_catalog"."pg_class" AS "ci" ON "ci"."oid" = "i"."indexrelid"
                  WHERE (PG_CATALOG.PG_GET_EXPR("i"."indpred", "i"."indrelid") IS NULL) AND n.nspname !~ '^information_schema|catalog_history|pg_' AND ("ct"."relname" IN ($1))) AS "tmp"
            WHERE "tmp"."pos" = 1`,
  schemas: `SELECT nspname AS TABLE_SCHEM, NULL AS TABLE_CATALOG FROM pg_catalog.pg_namespace
            WHERE nspname <> 'pg_toast' AND (nspname !~ '^pg_temp_' OR nspname = (pg_catalog.current_schemas(true))[1])
            ORDER BY TABLE_SCHEM`,
  enums: 'SELECT nspname, typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid IN (SELECT DISTINCT enumtypid FROM pg_enum e)',
};

const TABLES = ['clicks', 'page_minute', 'page_minute__batch', 'page_minute__speed'];

describe("BI tools' catalog queries list Strata's tables and columns", () => {
  let dir: string;
  let server: RunningStrata & { pgPort: number };
  let client: pg.Client;

  beforeAll(async () => {
    dir = await tempDir();
    server = await startWithPg(dir);
    client = await pgClient(server.pgPort);
  });

  afterAll(async () => {
    await client?.end();
    await server?.close();
    await removeDir(dir);
  });

  it("Grafana's: version, extensions, schemas, tables, columns", async () => {
    expect(Math.trunc(Number((await client.query(GRAFANA.version)).rows[0].version))).toBe(1500);
    expect((await client.query(GRAFANA.timescale)).rows).toEqual([]);
    expect((await client.query(GRAFANA.schemas)).rows).toEqual([{ name: 'main' }]);
    const tables = (await client.query(GRAFANA.tables)).rows.map((row: { table: string }) => row.table);
    expect(tables).toEqual(expect.arrayContaining(TABLES));
    const columns = (await client.query(GRAFANA.columns)).rows;
    expect(columns).toEqual(
      expect.arrayContaining([
        { column: 'event_id', type: 'text' },
        { column: 'ts', type: 'timestamp without time zone' },
        { column: 'amount', type: 'double precision' },
      ]),
    );
  });

  it("Metabase's: tables, fields, privileges, indexes, schemas, enums (as prepared statements)", async () => {
    const tables = (await client.query(METABASE.tables, ['^pg_', 'information_schema', 'main'])).rows;
    expect(tables.filter((row: { name: string }) => TABLES.includes(row.name))).toEqual(
      TABLES.map((name) => ({ schema: 'main', name, type: 'TABLE', description: null, estimated_row_count: null })),
    );
    const fields = (await client.query(METABASE.fields, ['main', 'clicks', 'main', 'clicks'])).rows;
    expect(fields.map((row: Record<string, unknown>) => [row.name, row['database-type'], row['database-position']])).toEqual([
      ['event_id', 'text', 0],
      ['ts', 'timestamp', 1],
      ['user_id', 'text', 2],
      ['page', 'text', 3],
      ['amount', 'float8', 4],
      ['__shard', 'int4', 5],
      ['__seq', 'int8', 6],
      ['dt', 'text', 7],
    ]);
    const privileges = (await client.query(METABASE.privileges)).rows;
    expect(privileges.filter((row: { table: string }) => TABLES.includes(row.table)).every((row: { select: boolean }) => row.select)).toBe(true);
    expect((await client.query(METABASE.indexes, ['clicks'])).rows).toEqual([]);
    // DuckDB keeps an unquoted alias's case (PostgreSQL would fold it); JDBC reads these columns without regard to case.
    expect((await client.query(METABASE.schemas)).rows.map((row: { TABLE_SCHEM: string }) => row.TABLE_SCHEM)).toContain('main');
    expect((await client.query(METABASE.enums)).rows).toEqual([]);
    expect((await client.query('show timezone;')).rows).toEqual([{ TimeZone: 'UTC' }]);
  });
});
