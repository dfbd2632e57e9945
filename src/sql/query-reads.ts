/**
 * What a query reads, taken from DuckDB's own parse tree (`json_serialize_sql`), never from the SQL text: the
 * tables it names anywhere (FROM, joins, subqueries in any clause, CTE bodies, DESCRIBE/SUMMARIZE), and
 * whatever else reaches data (a table function, a file named as a table, a system table). Authorization
 * (src/security) decides on this; a query is refused whole if one thing it reads is not allowed.
 */

/** The relations a query reads. */
export interface QueryReads {
  /** The Strata tables it names (catalog tables and derived ones: `<view>`, `<view>__batch`, `<stream>__clean`...), each once, spelled as Strata spells them. */
  readonly tables: readonly string[];
  /**
   * Everything else it reads, as written: a DuckDB system table (`duckdb_views`, `information_schema.tables`),
   * a table function call (`read_parquet()`), a file named as a table (`'x.parquet'`), `SHOW TABLES`. Only
   * admin tokens may read these.
   */
  readonly other: readonly string[];
  /** Table functions it calls, by name (lower case), each once; also listed in {@link other} as `name()`. */
  readonly functions: readonly string[];
}

/** A node of DuckDB's parse tree. */
type Node = { readonly [key: string]: unknown };

const isNode = (value: unknown): value is Node => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The schema and catalog names that mean "Strata's own tables" in the engine's in-memory database. */
const OWN_SCHEMAS = new Set(['', 'main']);
const OWN_CATALOGS = new Set(['', 'memory']);

/**
 * Reads the relations of parsed statements.
 *
 * - `known`: Strata's tables, by lower-case name → the name as Strata spells it (DuckDB resolves names
 *   without regard to case, so `CLICKS` is `clicks`).
 * - `existsInEngine`: whether DuckDB has a relation of that name outside Strata's (a system view such as
 *   `duckdb_views` or `pg_class`). A name that is a CTE of the query is skipped only when it is no Strata table
 *   and no such relation either: then it can only mean the CTE, whatever scope it is read in, so skipping it
 *   can never let a real table through unchecked.
 */
export async function queryReads(
  statements: readonly Node[],
  known: ReadonlyMap<string, string>,
  existsInEngine: (name: string) => Promise<boolean>,
): Promise<QueryReads> {
  const tables = new Set<string>();
  const other = new Set<string>();
  const functions = new Set<string>();
  const cteNames = new Set<string>();
  const unresolved: string[] = [];

  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const item of value) visit(item);
      return;
    }
    if (!isNode(value)) return;
    const cteMap = value.cte_map;
    if (isNode(cteMap) && Array.isArray(cteMap.map)) {
      for (const entry of cteMap.map) if (isNode(entry) && typeof entry.key === 'string') cteNames.add(entry.key.toLowerCase());
    }
    switch (value.type) {
      case 'BASE_TABLE': {
        const name = String(value.table_name ?? '');
        const schema = String(value.schema_name ?? '');
        const catalog = String(value.catalog_name ?? '');
        if (OWN_SCHEMAS.has(schema.toLowerCase()) && OWN_CATALOGS.has(catalog.toLowerCase())) {
          const own = known.get(name.toLowerCase());
          if (own !== undefined) tables.add(own);
          else unresolved.push(name);
        } else {
          other.add([catalog, schema, name].filter((part) => part !== '').join('.'));
        }
        break;
      }
      case 'TABLE_FUNCTION': {
        const fn = isNode(value.function) ? String(value.function.function_name ?? '').toLowerCase() : '';
        functions.add(fn);
        other.add(`${fn}()`);
        break;
      }
      case 'SHOW_REF': {
        // DESCRIBE/SUMMARIZE of a query carry it (walked below); SHOW TABLES and the like list the catalog.
        if (value.query === null || value.query === undefined) {
          const name = String(value.table_name ?? '').replace(/^"|"$/g, '');
          const own = known.get(name.toLowerCase());
          if (own !== undefined) tables.add(own);
          else other.add(`SHOW ${name}`.trim());
        }
        break;
      }
      default:
        break;
    }
    for (const [key, child] of Object.entries(value)) {
      if (key !== 'type') visit(child);
    }
  };
  visit(statements);

  for (const name of unresolved) {
    const lower = name.toLowerCase();
    if (cteNames.has(lower) && !(await existsInEngine(name))) continue;
    other.add(name);
  }
  return { tables: [...tables], other: [...other], functions: [...functions] };
}
