/**
 * PostgreSQL's catalog, as far as clients read it, over DuckDB. DuckDB ships a pg_catalog of its own and
 * answers many catalog queries as they are; this module closes the gaps by rewriting a query's text before
 * the SQL engine runs it:
 *
 * - catalog relations DuckDB lacks or fills differently are replaced by subqueries over DuckDB's own catalog
 *   (`pg_class` with Strata's tables as relkind 'r', `pg_attribute` with PostgreSQL type OIDs, `pg_type`,
 *   `information_schema.tables` and `.columns` with PostgreSQL's type names, empty `pg_policy`...);
 * - PostgreSQL-only syntax and functions become DuckDB's (`OPERATOR(pg_catalog.~)`, `::regclass`,
 *   `format_type()`, `quote_ident()`, `version()`, `current_setting()`...);
 * - known client idioms that have no DuckDB counterpart are replaced whole (Grafana's search_path expansion).
 *
 * Queries that touch no catalog are left in DuckDB's dialect (the same SQL as `POST /v1/sql`), except for a
 * few session functions (version(), current_setting(), current_user...) that must answer as PostgreSQL does.
 * Every rewrite produces a read-only query; the engine's own checks still apply to the result.
 *
 * A user who may not query every table sees only those it may in the catalog: the relations that list
 * Strata's tables (pg_class, pg_attribute, pg_tables, information_schema.tables and .columns, `::regclass`,
 * DuckDB's duckdb_views(), duckdb_tables() and duckdb_columns()) are filtered by the session's
 * {@link CatalogSession.visibleTables}. Authorization lets such a user read the catalog relations this module
 * reads itself (see {@link isCatalogRead}), in the spelling it writes them, and nothing else of DuckDB's.
 */
import {
  closingBracket,
  isBlank,
  isKeyword,
  isPunct,
  joinTokens,
  lookup,
  nameOf,
  nextSignificant,
  openingBracket,
  previousSignificant,
  quoteLiteral,
  quoteName,
  raw,
  splitArguments,
  stringValue,
  tokenize,
  type Token,
} from './sql-text.js';
import { OID, pgOidSql, TYPE_DISPLAY_NAMES, TYPE_NAMES } from './types.js';
import { VERSION_STRING } from './settings.js';

/** What a rewrite needs to know about the connection. */
export interface CatalogSession {
  readonly user: string;
  readonly database: string;
  readonly processId: number;
  /** A setting's value, or undefined when unknown. */
  setting(name: string): string | undefined;
  /** Every setting, for pg_settings. */
  settings(): readonly [string, string][];
  /** set_config(): changes a setting. */
  setSetting(name: string, value: string): void;
  /**
   * The Strata tables the user may query, the only ones catalog relations list; null when that is every table
   * (an admin). Loaded before a statement that {@link needsTableList}; an empty list lists nothing.
   */
  visibleTables(): readonly string[] | null;
}

/** A function, type or syntax the rewrite cannot express; the query fails with this message. */
export class UnsupportedSqlError extends Error {
  override readonly name = 'UnsupportedSqlError';
  constructor(
    message: string,
    /** SQLSTATE to answer with. */
    readonly sqlState: string,
  ) {
    super(message);
  }
}

/** Rewrites one statement's tokens into SQL DuckDB answers as PostgreSQL would. */
export function rewriteStatement(tokens: readonly Token[], session: CatalogSession): string {
  let text = joinTokens(tokens);
  const introspection = readsCatalog(tokens);
  if (introspection) text = replaceIdioms(text);
  let out = tokenize(text);
  if (introspection) out = rewriteOperatorSyntax(out);
  out = rewriteCalls(out, session, introspection);
  out = rewriteCasts(out, session);
  if (introspection) {
    out = rewriteRegexOperators(out);
    out = rewriteArrayLiterals(out);
    out = rewriteTableFunctionAliases(out);
    out = rewriteRelations(out, session);
  }
  out = rewriteDuckdbCatalogFunctions(out, session);
  return joinTokens(out);
}

/** Catalog functions of DuckDB's that list Strata's tables, by the column naming the table. */
const DUCKDB_TABLE_LISTS: Readonly<Record<string, string>> = {
  duckdb_views: 'view_name',
  duckdb_tables: 'table_name',
  duckdb_columns: 'table_name',
};

/**
 * Whether a statement's rewrite needs the session's {@link CatalogSession.visibleTables}: it reads a catalog,
 * casts to regclass or calls one of DuckDB's table-listing functions. (Deciding too little here only hides
 * more: without the list loaded, the filters list nothing.)
 */
export function needsTableList(tokens: readonly Token[]): boolean {
  return (
    readsCatalog(tokens) ||
    tokens.some((token) => {
      const name = token.kind === 'qident' ? nameOf(token)?.toLowerCase() : nameOf(token);
      return name === 'regclass' || name === 'to_regclass' || (name !== undefined && name !== null && lookup(DUCKDB_TABLE_LISTS, name) !== undefined);
    })
  );
}

/**
 * The catalog relations a rewritten query reads, as the rewrite spells them (and as DuckDB's parse reports
 * them): a user who may not read DuckDB's catalog may still read these, because the rewrite filters each of
 * them to the tables the user may query ({@link CatalogSession.visibleTables}) wherever they list tables. A
 * user's own spelling of one that escapes the rewrite (`system.pg_catalog.pg_class`, `"PG_CLASS"`) is not
 * this spelling, and stays refused.
 */
const REWRITE_SOURCES = new Set([
  'pg_catalog.pg_class',
  'pg_catalog.pg_description',
  'pg_catalog.pg_views',
  'information_schema.tables',
  'information_schema.views',
  'information_schema.columns',
  'information_schema.schemata',
  'duckdb_schemas()',
  'duckdb_views()',
  'duckdb_tables()',
  'duckdb_columns()',
]);

/**
 * DuckDB's catalog relations that say nothing about Strata's tables (all of them views, which have no
 * constraints, indexes, defaults or sequences) nor about the server, in any spelling: clients' catalog queries
 * read them as they are (psql's `\d` reads pg_index and pg_constraint). Not DuckDB's pg_settings (it holds the
 * lake's path; the rewrite answers the session's settings instead) nor pg_prepared_statements.
 */
const EMPTY_FOR_VIEWS = new Set([
  'pg_am', 'pg_attrdef', 'pg_collation', 'pg_constraint', 'pg_database', 'pg_depend', 'pg_enum', 'pg_index', 'pg_indexes',
  'pg_namespace', 'pg_proc', 'pg_sequence', 'pg_sequences', 'pg_tablespace', 'pg_type',
  'character_sets', 'check_constraints', 'constraint_column_usage', 'constraint_table_usage', 'key_column_usage',
  'referential_constraints', 'schemata', 'table_constraints',
]);

/**
 * Whether `name`, a relation or table function a query reads besides Strata's tables (as the SQL engine's
 * authorization reports it), is one of the catalog reads a user who may not read DuckDB's own catalog is
 * allowed over the PostgreSQL protocol: the sources of this module's rewrites, or catalog relations that hold
 * nothing about Strata's tables.
 */
export function isCatalogRead(name: string): boolean {
  if (REWRITE_SOURCES.has(name)) return true;
  const parts = name.toLowerCase().split('.');
  const relation = parts.pop()!;
  const schema = parts.join('.');
  const inSchema = relation.startsWith('pg_') ? schema === '' || schema === 'pg_catalog' : schema === 'information_schema';
  return inSchema && EMPTY_FOR_VIEWS.has(relation);
}

/** The SQL condition `column` (a Strata table's name) must meet to be listed: every table, or the visible ones. */
function visibleCondition(session: CatalogSession, column: string): string {
  const visible = session.visibleTables();
  if (visible === null) return 'true';
  if (visible.length === 0) return 'false';
  return `${column} IN (${visible.map(quoteLiteral).join(', ')})`;
}

/**
 * `duckdb_views()`, `duckdb_tables()` and `duckdb_columns()` written in a query (in any qualification) list
 * only the visible tables in the main schema, for a user who may not see them all.
 */
function rewriteDuckdbCatalogFunctions(tokens: Token[], session: CatalogSession): Token[] {
  if (session.visibleTables() === null) return tokens;
  const out: Token[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const name = token.kind === 'qident' ? nameOf(token)?.toLowerCase() : nameOf(token);
    const column = name === undefined || name === null ? undefined : lookup(DUCKDB_TABLE_LISTS, name);
    const open = nextSignificant(tokens, i);
    const close = isPunct(tokens[open], '(') ? closingBracket(tokens, open) : -1;
    if (column === undefined || close === -1) {
      out.push(token);
      continue;
    }
    // The qualifier (`system.main.`) goes with the call.
    const start = qualifiedNameStart(tokens, i);
    out.splice(out.length - (i - start));
    const following = tokens[nextSignificant(tokens, close)];
    const hasAlias =
      isKeyword(following, 'as') || following?.kind === 'qident' || (following?.kind === 'ident' && !CLAUSE_WORDS.has(following.text.toLowerCase()));
    out.push(
      raw(
        `(SELECT * FROM ${name}() WHERE NOT (database_name = current_database() AND schema_name = 'main') OR ${visibleCondition(session, column)})` +
          (hasAlias ? '' : ` AS ${name}`),
      ),
    );
    i = close;
  }
  return out;
}

/** True when the statement reads a PostgreSQL catalog (pg_catalog, information_schema or a bare pg_* relation). */
export function readsCatalog(tokens: readonly Token[]): boolean {
  return tokens.some((token) => {
    const name = nameOf(token);
    return name === 'pg_catalog' || name === 'information_schema' || (name !== null && lookup(RELATIONS, name) !== undefined);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Shared helpers

/** Keywords that end a relation (so a name after the relation is not its alias) or a select-list item. */
const CLAUSE_WORDS = new Set([
  'where', 'join', 'left', 'right', 'inner', 'outer', 'full', 'cross', 'natural', 'on', 'using', 'group', 'order', 'limit',
  'offset', 'union', 'except', 'intersect', 'having', 'window', 'fetch', 'for', 'qualify', 'lateral', 'positional',
  'asof', 'anti', 'semi', 'tablesample', 'returning', 'into', 'from', 'select', 'when', 'then', 'else', 'end', 'and', 'or',
]);

/** Keywords that may stand before `(` without naming a function. */
const NOT_FUNCTION_NAMES = new Set([
  'in', 'and', 'or', 'not', 'where', 'select', 'on', 'when', 'then', 'else', 'exists', 'from', 'join', 'as', 'by', 'values',
  'using', 'with', 'case', 'over', 'filter', 'within', 'any', 'all', 'some', 'array', 'is', 'like', 'between',
]);

/**
 * The clause the token at `i` belongs to at its own nesting level: the nearest of SELECT, FROM, WHERE, ...
 * before it, or null when an unmatched `(` comes first (it sits in an expression's parentheses).
 */
function clauseOf(tokens: readonly Token[], i: number): string | null {
  let depth = 0;
  for (let j = i - 1; j >= 0; j--) {
    const token = tokens[j]!;
    if (token.kind === 'punct' && (token.text === ')' || token.text === ']')) depth++;
    else if (token.kind === 'punct' && (token.text === '(' || token.text === '[')) {
      if (depth === 0) return null;
      depth--;
    } else if (depth === 0 && token.kind === 'ident') {
      const word = token.text.toLowerCase();
      if (['select', 'from', 'where', 'group', 'having', 'order', 'limit', 'join', 'on', 'using', 'window', 'qualify'].includes(word)) {
        return word;
      }
    }
  }
  return null;
}

/**
 * True when the expression spanning tokens [start, end] is a whole item of a select list, without an alias:
 * PostgreSQL names such a column after the function (`version`), DuckDB after the text, so the rewrite adds
 * the name.
 */
function isBareSelectItem(tokens: readonly Token[], start: number, end: number): boolean {
  if (clauseOf(tokens, start) !== 'select') return false;
  const before = tokens[previousSignificant(tokens, start)];
  if (!(isPunct(before, ',') || isKeyword(before, 'select') || isKeyword(before, 'distinct'))) return false;
  const after = tokens[nextSignificant(tokens, end)];
  if (after === undefined || isPunct(after, ',') || isPunct(after, ')') || isPunct(after, ';')) return true;
  return after.kind === 'ident' && ['from', 'union', 'except', 'intersect', 'order', 'limit', 'where', 'group', 'having', 'into', 'window', 'offset'].includes(after.text.toLowerCase());
}

/**
 * Start of the primary expression that ends at token `end` (the operand of a `::` cast): a literal, a
 * parameter, a (qualified) name, a parenthesised expression or function call, a subscript.
 */
function operandStart(tokens: readonly Token[], end: number): number {
  const token = tokens[end];
  if (token === undefined) return end;
  if (isPunct(token, ')') || isPunct(token, ']')) {
    const open = openingBracket(tokens, end);
    if (open === -1) return end;
    const before = previousSignificant(tokens, open);
    if (isPunct(token, ']') && before >= 0) return operandStart(tokens, before);
    const name = tokens[before];
    if (isPunct(token, ')') && name && (name.kind === 'qident' || (name.kind === 'ident' && !NOT_FUNCTION_NAMES.has(name.text.toLowerCase())))) {
      return qualifiedNameStart(tokens, before);
    }
    return open;
  }
  if (token.kind === 'ident' || token.kind === 'qident') return qualifiedNameStart(tokens, end);
  return end;
}

function qualifiedNameStart(tokens: readonly Token[], i: number): number {
  let start = i;
  for (;;) {
    const dot = previousSignificant(tokens, start);
    if (!isPunct(tokens[dot], '.')) return start;
    const name = previousSignificant(tokens, dot);
    if (tokens[name]?.kind !== 'ident' && tokens[name]?.kind !== 'qident') return start;
    start = name;
  }
}

/** If tokens at `i` are `pg_catalog .`, the index after the dot; else `i`. */
function skipCatalogQualifier(tokens: readonly Token[], i: number): number {
  if (nameOf(tokens[i]) !== 'pg_catalog') return i;
  const dot = nextSignificant(tokens, i);
  if (!isPunct(tokens[dot], '.')) return i;
  return nextSignificant(tokens, dot);
}

// ---------------------------------------------------------------------------------------------------------
// Idioms: client queries with no DuckDB counterpart, replaced whole

/** A pattern matching `template` token by token, with any whitespace between tokens. */
function idiom(template: string): RegExp {
  const parts = tokenize(template)
    .filter((token) => !isBlank(token))
    .map((token) => token.text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(parts.join('\\s*'), 'gi');
}

/** Grafana's query editor expands search_path into schema names with generate_series over an array. */
const GRAFANA_SEARCH_PATH = idiom(
  `SELECT CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
   FROM generate_series(array_lower(string_to_array(current_setting('search_path'),','),1),
                        array_upper(string_to_array(current_setting('search_path'),','),1)) as i,
        string_to_array(current_setting('search_path'),',') s`,
);

/**
 * `(information_schema._pg_expandarray(a)).n`: PostgreSQL's set-returning helper (the JDBC driver and
 * Metabase list index columns with it) as DuckDB's unnest of the positions, or `.x` of the elements.
 */
const EXPAND_ARRAY = /\(\s*information_schema\s*\.\s*_pg_expandarray\s*\(([^()]*)\)\s*\)\s*\.\s*("?)(n|x)\2(?![\w$])/gi;

function replaceIdioms(sql: string): string {
  return (
    sql
      // Strata has one schema, `main`: the search path expands to it.
      .replace(GRAFANA_SEARCH_PATH, "SELECT 'main'")
      .replace(EXPAND_ARRAY, (_all, array: string, _quote: string, member: string) =>
        member.toLowerCase() === 'n' ? `unnest(generate_series(1, len(${array})))` : `unnest(${array})`,
      )
  );
}

// ---------------------------------------------------------------------------------------------------------
// Syntax: OPERATOR(pg_catalog.~) and COLLATE pg_catalog.default

function rewriteOperatorSyntax(tokens: Token[]): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (isKeyword(token, 'operator') && isPunct(tokens[nextSignificant(tokens, i)], '(')) {
      const open = nextSignificant(tokens, i);
      const close = closingBracket(tokens, open);
      const inner = tokens.slice(open + 1, close === -1 ? tokens.length : close).filter((t) => !isBlank(t));
      const operator = inner[inner.length - 1];
      if (close !== -1 && operator?.kind === 'op') {
        out.push({ kind: 'space', text: ' ' }, operator, { kind: 'space', text: ' ' });
        i = close;
        continue;
      }
    }
    if (isKeyword(token, 'collate')) {
      // The collations PostgreSQL clients name are PostgreSQL's; DuckDB compares as they mean (binary).
      let j = nextSignificant(tokens, i);
      j = skipCatalogQualifier(tokens, j);
      const collation = nameOf(tokens[j]);
      if (collation !== null && ['default', 'c', 'posix', 'ucs_basic'].includes(collation.toLowerCase())) {
        i = j;
        continue;
      }
    }
    out.push(token);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Function calls

/** How one PostgreSQL function is answered: replacement SQL from its (already rewritten) argument texts. */
interface FunctionRewrite {
  /** Only in catalog queries: elsewhere the name keeps DuckDB's meaning. */
  readonly catalogOnly?: boolean;
  /** The column name PostgreSQL gives a bare call in a select list. */
  readonly column?: string;
  rewrite(args: string[], session: CatalogSession, argTokens: Token[][]): string | null;
}

/** DuckDB's own pg_catalog functions: they may stay qualified. Any other `pg_catalog.f(` loses its qualifier. */
const DUCKDB_PG_CATALOG_FUNCTIONS = new Set([
  'col_description', 'current_database', 'current_query', 'current_schema', 'current_schemas', 'format_pg_type', 'format_type',
  'has_any_column_privilege', 'has_column_privilege', 'has_database_privilege', 'has_foreign_data_wrapper_privilege',
  'has_function_privilege', 'has_language_privilege', 'has_schema_privilege', 'has_sequence_privilege', 'has_server_privilege',
  'has_table_privilege', 'has_tablespace_privilege', 'inet_client_addr', 'inet_client_port', 'inet_server_addr',
  'inet_server_port', 'map_to_pg_oid', 'obj_description', 'pg_collation_is_visible', 'pg_conf_load_time',
  'pg_conversion_is_visible', 'pg_function_is_visible', 'pg_get_constraintdef', 'pg_get_expr', 'pg_get_viewdef', 'pg_has_role',
  'pg_is_other_temp_schema', 'pg_my_temp_schema', 'pg_opclass_is_visible', 'pg_operator_is_visible', 'pg_opfamily_is_visible',
  'pg_postmaster_start_time', 'pg_size_pretty', 'pg_sleep', 'pg_table_is_visible', 'pg_ts_config_is_visible',
  'pg_ts_dict_is_visible', 'pg_ts_parser_is_visible', 'pg_ts_template_is_visible', 'pg_type_is_visible', 'pg_typeof',
  'shobj_description',
]);

function settingLiteral(session: CatalogSession, name: string): string | undefined {
  const value = session.setting(name);
  return value === undefined ? undefined : quoteLiteral(value);
}

const FUNCTIONS: Record<string, FunctionRewrite> = {
  version: { column: 'version', rewrite: () => quoteLiteral(VERSION_STRING) },
  current_setting: {
    column: 'current_setting',
    rewrite: (args, session, argTokens) => {
      const literal = stringValue(argTokens[0]?.find((token) => !isBlank(token)));
      const missingOk = (args[1] ?? '').trim().toLowerCase() === 'true';
      if (literal !== null && argTokens[0]!.filter((token) => !isBlank(token)).length === 1) {
        const value = settingLiteral(session, literal);
        if (value !== undefined) return value;
        if (missingOk) return 'NULL::VARCHAR';
        throw new UnsupportedSqlError(`unrecognized configuration parameter "${literal}"`, '42704');
      }
      const cases = session.settings().map(([name, value]) => `WHEN ${quoteLiteral(name)} THEN ${quoteLiteral(value)}`);
      return `(CASE lower(${args[0] ?? 'NULL'}) ${cases.join(' ')} ELSE NULL::VARCHAR END)`;
    },
  },
  set_config: {
    column: 'set_config',
    rewrite: (_args, session, argTokens) => {
      const name = stringValue(argTokens[0]?.find((token) => !isBlank(token)));
      const value = stringValue(argTokens[1]?.find((token) => !isBlank(token)));
      if (name === null || value === null) throw new UnsupportedSqlError('set_config() takes literal arguments here', '0A000');
      session.setSetting(name, value);
      return quoteLiteral(session.setting(name) ?? value);
    },
  },
  pg_backend_pid: { column: 'pg_backend_pid', rewrite: (_args, session) => String(session.processId) },
  current_database: { column: 'current_database', rewrite: (_args, session) => quoteLiteral(session.database) },
  pg_is_in_recovery: { column: 'pg_is_in_recovery', rewrite: () => 'false' },
  pg_get_userbyid: { column: 'pg_get_userbyid', rewrite: (_args, session) => quoteLiteral(session.user) },
  pg_encoding_to_char: { rewrite: () => quoteLiteral('UTF8') },
  // Catalog helpers DuckDB lacks or names differently.
  quote_ident: {
    catalogOnly: true,
    rewrite: ([x]) => `(CASE WHEN regexp_full_match((${x}), '[a-z_][a-z0-9_$]*') THEN (${x}) ELSE '"' || replace((${x}), '"', '""') || '"' END)`,
  },
  // Names with dots inside quotes are split wrongly; catalog queries name plain tables.
  parse_ident: { catalogOnly: true, rewrite: ([x]) => `string_split((${x}), '.')` },
  string_to_array: { catalogOnly: true, rewrite: ([s, d]) => `string_split((${s}), (${d}))` },
  array_length: { catalogOnly: true, rewrite: ([a]) => `len(${a})` },
  array_upper: { catalogOnly: true, rewrite: ([a]) => `len(${a})` },
  array_lower: { catalogOnly: true, rewrite: () => '1' },
  cardinality: { catalogOnly: true, rewrite: ([a]) => `len(${a})` },
  format: { catalogOnly: true, rewrite: (args, _session, argTokens) => printfOf(args, argTokens) },
  pg_get_expr: { catalogOnly: true, rewrite: ([expr]) => `CAST((${expr}) AS VARCHAR)` },
  format_type: { catalogOnly: true, rewrite: ([oid, typmod]) => formatTypeSql(oid ?? 'NULL', typmod ?? 'NULL') },
  obj_description: { catalogOnly: true, rewrite: (args) => (args.length === 1 ? 'NULL::VARCHAR' : null) },
  pg_relation_is_publishable: { catalogOnly: true, rewrite: () => 'false' },
  pg_get_statisticsobjdef_columns: { catalogOnly: true, rewrite: () => 'NULL::VARCHAR' },
  pg_get_indexdef: { catalogOnly: true, rewrite: () => "''" },
  pg_get_partkeydef: { catalogOnly: true, rewrite: () => 'NULL::VARCHAR' },
  pg_total_relation_size: { catalogOnly: true, rewrite: () => '0::BIGINT' },
  pg_relation_size: { catalogOnly: true, rewrite: () => '0::BIGINT' },
  pg_table_size: { catalogOnly: true, rewrite: () => '0::BIGINT' },
  pg_indexes_size: { catalogOnly: true, rewrite: () => '0::BIGINT' },
  to_regclass: { catalogOnly: true, rewrite: ([name], session) => relationOidByName(name ?? 'NULL', session) },
};

/** Keywords PostgreSQL evaluates as functions without parentheses. */
const KEYWORD_FUNCTIONS: Record<string, (session: CatalogSession) => string> = {
  current_user: (session) => quoteLiteral(session.user),
  session_user: (session) => quoteLiteral(session.user),
  current_role: (session) => quoteLiteral(session.user),
  user: (session) => quoteLiteral(session.user),
  current_catalog: (session) => quoteLiteral(session.database),
};

/** format('%s.%I', a, b) as DuckDB's printf: %I and %L lose their quoting (catalog names are plain). */
function printfOf(args: string[], argTokens: Token[][]): string | null {
  const pattern = stringValue(argTokens[0]?.find((token) => !isBlank(token)));
  if (pattern === null) return null;
  const converted = pattern.replace(/%%|%([IL])/g, (all, kind: string | undefined) => (kind === 'L' ? "'%s'" : kind === 'I' ? '%s' : all));
  return `printf(${[quoteLiteral(converted), ...args.slice(1)].join(', ')})`;
}

function formatTypeSql(oid: string, typmod: string): string {
  const names = Object.entries(TYPE_DISPLAY_NAMES)
    .filter(([type]) => Number(type) !== OID.numeric)
    .map(([type, name]) => `WHEN ${type} THEN ${quoteLiteral(name)}`);
  const numeric =
    `WHEN ${OID.numeric} THEN CASE WHEN (${typmod}) > 4 ` +
    `THEN 'numeric(' || (((${typmod}) - 4) // 65536) || ',' || (((${typmod}) - 4) % 65536) || ')' ELSE 'numeric' END`;
  return `(CASE (${oid}) ${numeric} ${names.join(' ')} ELSE '???' END)`;
}

/**
 * Rewrites function calls, innermost first, so that an argument is already DuckDB's when its function is
 * rewritten. Calls qualified with `pg_catalog.` that DuckDB only knows unqualified lose the qualifier.
 */
function rewriteCalls(tokens: Token[], session: CatalogSession, introspection: boolean): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const afterQualifier = skipCatalogQualifier(tokens, i);
    const qualified = afterQualifier !== i;
    const nameToken = tokens[afterQualifier];
    const name = nameToken?.kind === 'ident' ? nameToken.text.toLowerCase() : null;
    const previous = tokens[previousSignificant(tokens, i)];
    const isMember = isPunct(previous, '.');
    const open = nextSignificant(tokens, afterQualifier);
    if (name !== null && !isMember && isPunct(tokens[open], '(')) {
      const close = closingBracket(tokens, open);
      const rewrite = lookup(FUNCTIONS, name);
      if (close !== -1 && rewrite && (introspection || !rewrite.catalogOnly)) {
        // Arguments are rewritten whole (calls and casts) before they become the replacement's opaque text.
        const inner = rewriteCasts(rewriteCalls(tokens.slice(open + 1, close), session, introspection), session);
        const argTokens = splitArguments([raw('('), ...inner, raw(')')], 0, inner.length + 1);
        const args = argTokens.map((arg) => joinTokens(arg).trim());
        const replacement = rewrite.rewrite(args, session, argTokens);
        if (replacement !== null) {
          const alias = rewrite.column && isBareSelectItem(tokens, i, close) ? ` AS ${quoteName(rewrite.column)}` : '';
          out.push(raw(`${replacement}${alias}`));
          i = close;
          continue;
        }
      }
      if (qualified && !DUCKDB_PG_CATALOG_FUNCTIONS.has(name)) {
        // DuckDB's built-ins live outside its pg_catalog schema: call them unqualified.
        i = afterQualifier - 1;
        continue;
      }
    }
    if (!qualified && token.kind === 'ident' && !isMember && !isPunct(tokens[nextSignificant(tokens, i)], '(')) {
      const keyword = lookup(KEYWORD_FUNCTIONS, token.text.toLowerCase());
      if (keyword && !isKeyword(previous, 'as') && !isPunct(tokens[nextSignificant(tokens, i)], '.')) {
        const alias = isBareSelectItem(tokens, i, i) ? ` AS ${quoteName(token.text.toLowerCase())}` : '';
        out.push(raw(`${keyword(session)}${alias}`));
        continue;
      }
    }
    out.push(token);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Casts: ::regclass and friends, and PostgreSQL type names DuckDB lacks

/** PostgreSQL-only type names, as DuckDB types. */
const TYPE_ALIASES: Record<string, string> = {
  name: 'VARCHAR',
  '"char"': 'VARCHAR',
  jsonb: 'JSON',
  xid: 'BIGINT',
  xid8: 'BIGINT',
  cid: 'BIGINT',
  tid: 'VARCHAR',
  oidvector: 'VARCHAR',
  int2vector: 'VARCHAR',
  pg_node_tree: 'VARCHAR',
  aclitem: 'VARCHAR',
  regproc: 'VARCHAR',
  regprocedure: 'VARCHAR',
  regoper: 'VARCHAR',
  regoperator: 'VARCHAR',
  regconfig: 'VARCHAR',
  regdictionary: 'VARCHAR',
  text: 'VARCHAR',
  unknown: 'VARCHAR',
  anyarray: 'VARCHAR',
};

/** OIDs of the catalogs clients name in `'pg_class'::regclass` (fixed in PostgreSQL). */
const CATALOG_OIDS: Record<string, number> = {
  pg_class: 1259,
  pg_type: 1247,
  pg_attribute: 1249,
  pg_proc: 1255,
  pg_namespace: 2615,
  pg_constraint: 2606,
  pg_database: 1262,
  pg_description: 2609,
  pg_index: 2610,
  pg_trigger: 2620,
  pg_rewrite: 2618,
};

/** pg_class as `::regclass` reads it: the relations the session may see. */
function visibleRelations(session: CatalogSession): string {
  return session.visibleTables() === null ? 'pg_catalog.pg_class' : `(${RELATIONS.pg_class!(session)})`;
}

/** The relation OID of a (possibly schema-qualified, possibly quoted) name. */
function relationOidByName(name: string, session: CatalogSession): string {
  return `(SELECT min(oid) FROM ${visibleRelations(session)} WHERE relname = trim(string_split(CAST((${name}) AS VARCHAR), '.')[-1], '"'))`;
}

interface ParsedType {
  /** Last token index of the type. */
  readonly end: number;
  /** Lower-case name without qualifier, `"char"` kept quoted; `[]` appended per dimension. */
  readonly name: string;
  /** The type's text as written, without a pg_catalog qualifier. */
  readonly text: string;
}

const MULTIWORD_TYPES = ['double precision', 'character varying', 'bit varying', 'timestamp with time zone', 'timestamp without time zone', 'time with time zone', 'time without time zone'];

function parseType(tokens: readonly Token[], start: number): ParsedType | null {
  let i = skipCatalogQualifier(tokens, start);
  const first = tokens[i];
  if (first?.kind !== 'ident' && first?.kind !== 'qident') return null;
  let name = first.kind === 'qident' ? first.text.toLowerCase() : first.text.toLowerCase();
  let end = i;
  // Multi-word names: take following words while they extend a known name.
  for (;;) {
    const next = nextSignificant(tokens, end);
    const word = tokens[next];
    if (word?.kind !== 'ident') break;
    const candidate = `${name} ${word.text.toLowerCase()}`;
    if (!MULTIWORD_TYPES.some((type) => type === candidate || type.startsWith(`${candidate} `))) break;
    name = candidate;
    end = next;
  }
  i = end;
  let modifiers = '';
  const open = nextSignificant(tokens, i);
  if (isPunct(tokens[open], '(')) {
    const close = closingBracket(tokens, open);
    if (close === -1) return null;
    modifiers = joinTokens(tokens.slice(open, close + 1));
    i = close;
  }
  let dims = '';
  for (;;) {
    const open2 = nextSignificant(tokens, i);
    const close2 = nextSignificant(tokens, open2);
    if (!isPunct(tokens[open2], '[') || !isPunct(tokens[close2], ']')) break;
    dims += '[]';
    i = close2;
  }
  return { end: i, name: name + dims, text: `${joinTokens(tokens.slice(skipCatalogQualifier(tokens, start), end + 1))}${modifiers}${dims}` };
}

function rewriteCasts(tokens: Token[], session: CatalogSession): Token[] {
  let out = convertCastCalls(tokens);
  for (let i = 0; i < out.length; i++) {
    const token = out[i]!;
    if (token.kind !== 'op' || token.text !== '::') continue;
    const type = parseType(out, nextSignificant(out, i));
    if (type === null) continue;
    const operandEnd = previousSignificant(out, i);
    const start = operandStart(out, operandEnd);
    const operandTokens = out.slice(start, operandEnd + 1);
    const operand = joinTokens(operandTokens);
    const base = type.name.replace(/\[\]$/g, '');
    let replacement: string | null = null;
    const followedBy = parseFollowingCast(out, type.end);
    if (base === 'regclass') {
      replacement = regclassCast(operandTokens, operand, followedBy, session);
    } else if (base === 'regtype') {
      const literal = operandTokens.length === 1 ? stringValue(operandTokens[0]) : null;
      replacement = literal !== null ? String(typeOidByName(literal)) : formatTypeSql(operand, '-1');
    } else if (base === 'regnamespace') {
      replacement = `(SELECT min(nspname) FROM (${RELATIONS.pg_namespace!(session)}) WHERE oid = (${operand}))`;
    } else if (base === 'regrole') {
      replacement = quoteLiteral(session.user);
    } else {
      const alias = lookup(TYPE_ALIASES, base);
      const qualified = skipCatalogQualifier(out, nextSignificant(out, i)) !== nextSignificant(out, i);
      if (alias === undefined && !qualified) continue;
      const dims = type.name.slice(base.length);
      out = [...out.slice(0, i + 1), raw(alias === undefined ? type.text : `${alias}${dims}`), ...out.slice(type.end + 1)];
      continue;
    }
    out = [...out.slice(0, start), raw(`(${replacement})`), ...out.slice(type.end + 1)];
    i = start;
  }
  return out;
}

/** `CAST(x AS regclass)` (and other PostgreSQL-only types) written as `(x)::regclass`, for the rule above. */
function convertCastCalls(tokens: Token[]): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const open = nextSignificant(tokens, i);
    if (isKeyword(token, 'cast') && isPunct(tokens[open], '(')) {
      const close = closingBracket(tokens, open);
      if (close !== -1) {
        let as = -1;
        let depth = 0;
        for (let j = open + 1; j < close; j++) {
          const t = tokens[j]!;
          if (isPunct(t, '(') || isPunct(t, '[')) depth++;
          else if (isPunct(t, ')') || isPunct(t, ']')) depth--;
          else if (depth === 0 && isKeyword(t, 'as')) as = j;
        }
        const type = as === -1 ? null : parseType(tokens, nextSignificant(tokens, as));
        const base = type?.name.replace(/\[\]$/g, '');
        if (type && base && (base.startsWith('reg') || lookup(TYPE_ALIASES, base) !== undefined || nameOf(tokens[nextSignificant(tokens, as)]) === 'pg_catalog')) {
          const inner = convertCastCalls(tokens.slice(open + 1, as));
          out.push({ kind: 'punct', text: '(' }, ...inner, { kind: 'punct', text: ')' }, { kind: 'op', text: '::' }, ...tokens.slice(nextSignificant(tokens, as), close));
          i = close;
          continue;
        }
      }
    }
    out.push(token);
  }
  return out;
}

/** The type of a `::` cast right after token `end`, if any (to tell `x::regclass::oid` from `x::regclass`). */
function parseFollowingCast(tokens: readonly Token[], end: number): string | null {
  const next = nextSignificant(tokens, end);
  if (tokens[next]?.kind !== 'op' || tokens[next]!.text !== '::') return null;
  return parseType(tokens, nextSignificant(tokens, next))?.name ?? null;
}

/**
 * `x::regclass` is an OID that prints as a name. Which of the two the query wants depends on the operand:
 * a name (a string literal or an expression built from strings) is looked up as a relation OID; an OID
 * column becomes the relation's name, unless it is cast on to a number.
 */
function regclassCast(operandTokens: readonly Token[], operand: string, followedBy: string | null, session: CatalogSession): string {
  const significantTokens = operandTokens.filter((token) => !isBlank(token));
  const literal = significantTokens.length === 1 ? stringValue(significantTokens[0]) : null;
  if (literal !== null) {
    const known = lookup(CATALOG_OIDS, literal.replace(/^pg_catalog\./, ''));
    return known !== undefined ? String(known) : relationOidByName(quoteLiteral(literal), session);
  }
  const built = operandTokens.some((token) => token.kind === 'string' || (token.kind === 'op' && token.text === '||')) || /printf\(|concat\(/i.test(operand);
  const toNumber = followedBy !== null && ['oid', 'int', 'int4', 'int8', 'integer', 'bigint'].includes(followedBy);
  if (built || toNumber) return relationOidByName(operand, session);
  return `(SELECT min(relname) FROM ${visibleRelations(session)} WHERE oid = (${operand}))`;
}

function typeOidByName(name: string): number {
  const lower = name.toLowerCase().replace(/^pg_catalog\./, '');
  for (const [oid, typname] of Object.entries(TYPE_NAMES)) if (typname === lower) return Number(oid);
  for (const [oid, display] of Object.entries(TYPE_DISPLAY_NAMES)) if (display === lower) return Number(oid);
  throw new UnsupportedSqlError(`type "${name}" does not exist`, '42704');
}

// ---------------------------------------------------------------------------------------------------------
// Regular expressions: PostgreSQL's ~ finds a match anywhere, DuckDB's matches the whole string

function rewriteRegexOperators(tokens: Token[]): Token[] {
  const out = [...tokens];
  for (let i = 0; i < out.length; i++) {
    const token = out[i]!;
    if (token.kind !== 'op' || !['~', '~*', '!~', '!~*'].includes(token.text)) continue;
    const next = nextSignificant(out, i);
    const pattern = stringValue(out[next]);
    if (pattern === null) continue;
    const insensitive = token.text.endsWith('*') ? '(?i)' : '';
    out[i] = { kind: 'op', text: token.text.startsWith('!') ? '!~' : '~' };
    out[next] = raw(quoteLiteral(`${insensitive}(?s:.*)(?:${pattern})(?s:.*)`));
  }
  return out;
}

/** `'{0}'` compared with an array column becomes DuckDB's list `[0]`. */
function rewriteArrayLiterals(tokens: Token[]): Token[] {
  const out = [...tokens];
  for (let i = 0; i < out.length; i++) {
    const value = stringValue(out[i]);
    if (value === null || !/^\{[^{}]*\}$/.test(value)) continue;
    const before = out[previousSignificant(out, i)];
    const after = out[nextSignificant(out, i)];
    const compared = (t: Token | undefined) => t?.kind === 'op' && ['=', '<>', '!='].includes(t.text);
    if (!compared(before) && !compared(after)) continue;
    const items = value.slice(1, -1).split(',').map((item) => item.trim()).filter((item) => item !== '');
    out[i] = raw(`[${items.map((item) => (/^-?\d+$/.test(item) ? item : quoteLiteral(item.replace(/^"(.*)"$/, '$1')))).join(', ')}]`);
  }
  return out;
}

/**
 * In PostgreSQL `FROM generate_series(1, 3) s` names both the table and its column `s`; in DuckDB `s` is the
 * row. `AS s(s)` names the column too.
 */
function rewriteTableFunctionAliases(tokens: Token[]): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    out.push(token);
    if (!isKeyword(token, 'generate_series') && !isKeyword(token, 'unnest')) continue;
    const clause = clauseOf(tokens, i);
    const open = nextSignificant(tokens, i);
    if ((clause !== 'from' && clause !== 'join') || !isPunct(tokens[open], '(')) continue;
    const close = closingBracket(tokens, open);
    if (close === -1) continue;
    let aliasAt = nextSignificant(tokens, close);
    if (isKeyword(tokens[aliasAt], 'as')) aliasAt = nextSignificant(tokens, aliasAt);
    const alias = tokens[aliasAt];
    if (!alias || (alias.kind !== 'ident' && alias.kind !== 'qident') || CLAUSE_WORDS.has(alias.text.toLowerCase())) continue;
    if (isPunct(tokens[nextSignificant(tokens, aliasAt)], '(')) continue;
    out.push(...tokens.slice(i + 1, aliasAt + 1), raw(`(${alias.text})`));
    i = aliasAt;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Relations

/** The schema Strata's tables live in (DuckDB's default), and the condition naming DuckDB objects in it. */
const MAIN_SCHEMA_OID = `(SELECT oid FROM duckdb_schemas() WHERE database_name = current_database() AND schema_name = 'main')`;

/** pg_am's OID of PostgreSQL's table access method, which Strata's tables claim (psql shows it). */
const HEAP_AM = 2;

function emptyRelation(columns: Record<string, string>): string {
  return `SELECT ${Object.entries(columns).map(([name, type]) => `NULL::${type} AS ${name}`).join(', ')} WHERE false`;
}

function values(rows: readonly (readonly string[])[], columns: readonly string[]): string {
  if (rows.length === 0) return `SELECT ${columns.map((c) => `NULL AS ${c}`).join(', ')} WHERE false`;
  return `SELECT * FROM (VALUES ${rows.map((row) => `(${row.join(', ')})`).join(', ')}) AS v(${columns.join(', ')})`;
}

const PG_CATALOG_NAMESPACE = `(SELECT oid FROM duckdb_schemas() WHERE database_name = 'system' AND schema_name = 'pg_catalog')`;

/** pg_type.typlen of the fixed-size types; the others are variable (-1). */
const TYPE_SIZES: Record<number, number> = {
  [OID.bool]: 1, [OID.char]: 1, [OID.int2]: 2, [OID.int4]: 4, [OID.oid]: 4, [OID.float4]: 4, [OID.date]: 4, [OID.int8]: 8,
  [OID.float8]: 8, [OID.time]: 8, [OID.timestamp]: 8, [OID.timestamptz]: 8, [OID.timetz]: 12, [OID.interval]: 16,
  [OID.uuid]: 16, [OID.name]: 64,
};

/** pg_type.typcategory: N numeric, S string, D date/time, B boolean, T timespan, U user-defined (the rest). */
function typeCategory(oid: number): string {
  const categories: [string, readonly number[]][] = [
    ['N', [OID.int2, OID.int4, OID.int8, OID.float4, OID.float8, OID.numeric, OID.oid]],
    ['S', [OID.text, OID.varchar, OID.bpchar, OID.name, OID.char]],
    ['D', [OID.date, OID.time, OID.timestamp, OID.timestamptz, OID.timetz]],
    ['B', [OID.bool]],
    ['T', [OID.interval]],
  ];
  return categories.find(([, oids]) => oids.includes(oid))?.[0] ?? 'U';
}

/** pg_type: one row per type Strata answers in, in the pg_catalog namespace. */
function pgTypeRelation(): string {
  const columns = {
    oid: (oid: number) => String(oid),
    typname: (_oid: number, name: string) => quoteLiteral(name),
    typnamespace: () => PG_CATALOG_NAMESPACE,
    typowner: () => '10::BIGINT',
    typlen: (oid: number) => `${TYPE_SIZES[oid] ?? -1}::SMALLINT`,
    typbyval: (oid: number) => String((TYPE_SIZES[oid] ?? 99) <= 8),
    typtype: () => "'b'",
    typcategory: (oid: number) => quoteLiteral(typeCategory(oid)),
    typispreferred: () => 'false',
    typisdefined: () => 'true',
    typdelim: () => "','",
    typrelid: () => '0::BIGINT',
    typelem: () => '0::BIGINT',
    typarray: () => '0::BIGINT',
    typinput: (_oid: number, name: string) => quoteLiteral(`${name}in`),
    typoutput: (_oid: number, name: string) => quoteLiteral(`${name}out`),
    typreceive: (_oid: number, name: string) => quoteLiteral(`${name}recv`),
    typsend: (_oid: number, name: string) => quoteLiteral(`${name}send`),
    typalign: () => "'i'",
    typstorage: () => "'p'",
    typnotnull: () => 'false',
    typbasetype: () => '0::BIGINT',
    typtypmod: () => '-1',
    typndims: () => '0',
    typcollation: (oid: number) => (typeCategory(oid) === 'S' ? '100::BIGINT' : '0::BIGINT'),
    typdefault: () => 'NULL::VARCHAR',
    typacl: () => 'NULL::VARCHAR[]',
  };
  const rows = Object.entries(TYPE_NAMES).map(([oid, name]) => Object.values(columns).map((column) => column(Number(oid), name)));
  return values(rows, Object.keys(columns));
}

/** PostgreSQL's name of a type OID, as information_schema.columns.data_type spells it. */
function dataTypeSql(oid: string): string {
  return `(CASE ${oid} ${Object.entries(TYPE_DISPLAY_NAMES).map(([o, name]) => `WHEN ${o} THEN ${quoteLiteral(name)}`).join(' ')} ELSE 'text' END)`;
}

function typeNameSql(oid: string): string {
  return `(CASE ${oid} ${Object.entries(TYPE_NAMES).map(([o, name]) => `WHEN ${o} THEN ${quoteLiteral(name)}`).join(' ')} ELSE 'text' END)`;
}

/** Replacement SQL per catalog relation, for the relations DuckDB lacks or fills differently. */
const RELATIONS: Record<string, (session: CatalogSession) => string> = {
  // Strata's tables and views are DuckDB views over Parquet; clients see them as tables (relkind 'r').
  pg_class: (session) =>
    `SELECT * EXCLUDE (strata_table) REPLACE (CASE WHEN strata_table THEN 'r' ELSE relkind END AS relkind, CASE WHEN strata_table THEN ${HEAP_AM} ELSE relam END AS relam, ` +
    `'d' AS relreplident, NULL::VARCHAR[] AS reloptions, NULL::VARCHAR[] AS relacl, NULL::VARCHAR AS relpartbound, 10::BIGINT AS relowner), ` +
    `false AS relforcerowsecurity ` +
    `FROM (SELECT *, relkind = 'v' AND relnamespace = ${MAIN_SCHEMA_OID} AS strata_table FROM pg_catalog.pg_class) ` +
    `WHERE relnamespace IS DISTINCT FROM ${MAIN_SCHEMA_OID} OR ${visibleCondition(session, 'relname')}`,
  pg_am: () => `SELECT ${HEAP_AM}::BIGINT AS oid, 'heap' AS amname, 'heap_tableam_handler' AS amhandler, 't' AS amtype`,
  pg_namespace: () =>
    `SELECT oid, schema_name AS nspname, 10::BIGINT AS nspowner, NULL::VARCHAR[] AS nspacl FROM duckdb_schemas() ` +
    `WHERE (database_name = current_database() AND schema_name = 'main') OR (database_name = 'system' AND schema_name IN ('pg_catalog', 'information_schema'))`,
  pg_attribute: (session) =>
    `SELECT table_oid AS attrelid, column_name AS attname, ${pgOidSql('data_type')}::BIGINT AS atttypid, 0 AS attstattarget, ` +
    `-1::SMALLINT AS attlen, column_index::SMALLINT AS attnum, 0 AS attndims, -1 AS attcacheoff, ` +
    `CASE WHEN data_type LIKE 'DECIMAL(%' THEN numeric_precision * 65536 + numeric_scale + 4 ELSE -1 END AS atttypmod, ` +
    `false AS attbyval, 'x' AS attstorage, 'i' AS attalign, NOT is_nullable AS attnotnull, column_default IS NOT NULL AS atthasdef, ` +
    `false AS atthasmissing, '' AS attidentity, '' AS attgenerated, false AS attisdropped, true AS attislocal, 0 AS attinhcount, '' AS attcompression, ` +
    `CASE WHEN data_type = 'VARCHAR' THEN 100 ELSE 0 END::BIGINT AS attcollation, NULL::VARCHAR[] AS attacl, NULL::VARCHAR[] AS attoptions, ` +
    `NULL::VARCHAR[] AS attfdwoptions, NULL::VARCHAR AS attmissingval FROM duckdb_columns() ` +
    `WHERE NOT (database_name = current_database() AND schema_name = 'main') OR ${visibleCondition(session, 'table_name')}`,
  pg_type: () => pgTypeRelation(),
  pg_description: () => `SELECT objoid, ${CATALOG_OIDS.pg_class}::BIGINT AS classoid, objsubid, description FROM pg_catalog.pg_description`,
  pg_tables: (session) =>
    `SELECT schema_name AS schemaname, view_name AS tablename, ${quoteLiteral(session.user)} AS tableowner, NULL::VARCHAR AS tablespace, ` +
    `false AS hasindexes, false AS hasrules, false AS hastriggers, false AS rowsecurity FROM duckdb_views() ` +
    `WHERE NOT internal AND database_name = current_database() AND schema_name = 'main' AND ${visibleCondition(session, 'view_name')} ` +
    `UNION ALL SELECT schema_name, table_name, ${quoteLiteral(session.user)}, NULL::VARCHAR, false, false, false, false FROM duckdb_tables() ` +
    `WHERE database_name = current_database() AND schema_name = 'main' AND ${visibleCondition(session, 'table_name')}`,
  pg_views: () => `SELECT * FROM pg_catalog.pg_views WHERE schemaname NOT IN ('main')`,
  pg_matviews: () =>
    emptyRelation({ schemaname: 'VARCHAR', matviewname: 'VARCHAR', matviewowner: 'VARCHAR', tablespace: 'VARCHAR', hasindexes: 'BOOLEAN', ispopulated: 'BOOLEAN', definition: 'VARCHAR' }),
  pg_extension: () =>
    emptyRelation({ oid: 'BIGINT', extname: 'VARCHAR', extowner: 'BIGINT', extnamespace: 'BIGINT', extrelocatable: 'BOOLEAN', extversion: 'VARCHAR', extconfig: 'BIGINT[]', extcondition: 'VARCHAR[]' }),
  pg_roles: (session) =>
    `SELECT 10::BIGINT AS oid, ${quoteLiteral(session.user)} AS rolname, false AS rolsuper, true AS rolinherit, false AS rolcreaterole, ` +
    `false AS rolcreatedb, true AS rolcanlogin, false AS rolreplication, -1 AS rolconnlimit, '********' AS rolpassword, ` +
    `NULL::TIMESTAMPTZ AS rolvaliduntil, false AS rolbypassrls, NULL::VARCHAR[] AS rolconfig`,
  pg_user: (session) =>
    `SELECT ${quoteLiteral(session.user)} AS usename, 10::BIGINT AS usesysid, false AS usecreatedb, false AS usesuper, false AS userepl, ` +
    `false AS usebypassrls, '********' AS passwd, NULL::TIMESTAMPTZ AS valuntil, NULL::VARCHAR[] AS useconfig`,
  pg_settings: (session) =>
    values(
      session.settings().map(([name, value]) => [quoteLiteral(name), quoteLiteral(value), 'NULL::VARCHAR', "'Strata'", "''", "'user'", "'string'", "'default'", quoteLiteral(value), quoteLiteral(value)]),
      ['name', 'setting', 'unit', 'category', 'short_desc', 'context', 'vartype', 'source', 'boot_val', 'reset_val'],
    ),
  pg_database: (session) =>
    `SELECT 1::BIGINT AS oid, ${quoteLiteral(session.database)} AS datname, 10::BIGINT AS datdba, 6 AS encoding, 'c' AS datlocprovider, ` +
    `false AS datistemplate, true AS datallowconn, -1 AS datconnlimit, 0::BIGINT AS dattablespace, 'C' AS datcollate, 'C' AS datctype, ` +
    `NULL::VARCHAR AS daticulocale, NULL::VARCHAR AS datcollversion, NULL::VARCHAR[] AS datacl`,
  pg_stat_user_tables: (session) =>
    `SELECT view_oid AS relid, schema_name AS schemaname, view_name AS relname, 0::BIGINT AS seq_scan, 0::BIGINT AS seq_tup_read, ` +
    `NULL::BIGINT AS idx_scan, NULL::BIGINT AS idx_tup_fetch, 0::BIGINT AS n_tup_ins, 0::BIGINT AS n_tup_upd, 0::BIGINT AS n_tup_del, ` +
    `NULL::BIGINT AS n_live_tup, 0::BIGINT AS n_dead_tup FROM duckdb_views() WHERE NOT internal AND database_name = current_database() AND schema_name = 'main' ` +
    `AND ${visibleCondition(session, 'view_name')}`,
  // Features Strata does not have: always empty, with the columns clients select.
  pg_policy: () =>
    emptyRelation({ oid: 'BIGINT', polname: 'VARCHAR', polrelid: 'BIGINT', polcmd: 'VARCHAR', polpermissive: 'BOOLEAN', polroles: 'BIGINT[]', polqual: 'VARCHAR', polwithcheck: 'VARCHAR' }),
  pg_statistic_ext: () =>
    emptyRelation({ oid: 'BIGINT', stxrelid: 'BIGINT', stxname: 'VARCHAR', stxnamespace: 'BIGINT', stxowner: 'BIGINT', stxstattarget: 'INTEGER', stxkeys: 'SMALLINT[]', stxkind: 'VARCHAR[]', stxexprs: 'VARCHAR' }),
  pg_publication: () =>
    emptyRelation({ oid: 'BIGINT', pubname: 'VARCHAR', pubowner: 'BIGINT', puballtables: 'BOOLEAN', pubinsert: 'BOOLEAN', pubupdate: 'BOOLEAN', pubdelete: 'BOOLEAN', pubtruncate: 'BOOLEAN', pubviaroot: 'BOOLEAN' }),
  pg_publication_namespace: () => emptyRelation({ oid: 'BIGINT', pnpubid: 'BIGINT', pnnspid: 'BIGINT' }),
  pg_publication_rel: () => emptyRelation({ oid: 'BIGINT', prpubid: 'BIGINT', prrelid: 'BIGINT', prqual: 'VARCHAR', prattrs: 'SMALLINT[]' }),
  pg_inherits: () => emptyRelation({ inhrelid: 'BIGINT', inhparent: 'BIGINT', inhseqno: 'INTEGER', inhdetachpending: 'BOOLEAN' }),
  pg_trigger: () =>
    emptyRelation({ oid: 'BIGINT', tgrelid: 'BIGINT', tgparentid: 'BIGINT', tgname: 'VARCHAR', tgfoid: 'BIGINT', tgtype: 'SMALLINT', tgenabled: 'VARCHAR', tgisinternal: 'BOOLEAN', tgconstraint: 'BIGINT' }),
  pg_rewrite: () => emptyRelation({ oid: 'BIGINT', rulename: 'VARCHAR', ev_class: 'BIGINT', ev_type: 'VARCHAR', ev_enabled: 'VARCHAR', is_instead: 'BOOLEAN' }),
  pg_partitioned_table: () => emptyRelation({ partrelid: 'BIGINT', partstrat: 'VARCHAR', partnatts: 'SMALLINT', partdefid: 'BIGINT' }),
  pg_foreign_table: () => emptyRelation({ ftrelid: 'BIGINT', ftserver: 'BIGINT', ftoptions: 'VARCHAR[]' }),
};

/** information_schema relations that need PostgreSQL's view of Strata's tables. */
const INFORMATION_SCHEMA: Record<string, (session: CatalogSession) => string> = {
  tables: (session) =>
    `SELECT * REPLACE (CASE WHEN table_type = 'VIEW' AND table_schema = 'main' AND table_catalog = current_database() THEN 'BASE TABLE' ELSE table_type END AS table_type) ` +
    `FROM information_schema.tables WHERE NOT (table_schema = 'main' AND table_catalog = current_database()) OR ${visibleCondition(session, 'table_name')}`,
  views: () => `SELECT * FROM information_schema.views WHERE NOT (table_schema = 'main' AND table_catalog = current_database())`,
  columns: (session) => {
    const oid = pgOidSql('data_type');
    return (
      `SELECT * REPLACE (${dataTypeSql(oid)} AS data_type, ${typeNameSql(oid)} AS udt_name, 'pg_catalog' AS udt_schema, CASE WHEN is_identity THEN 'YES' ELSE 'NO' END AS is_identity) ` +
      `FROM information_schema.columns WHERE NOT (table_schema = 'main' AND table_catalog = current_database()) OR ${visibleCondition(session, 'table_name')}`
    );
  },
  schemata: () =>
    `SELECT * FROM information_schema.schemata WHERE (catalog_name = current_database() AND schema_name = 'main') OR (catalog_name = 'system' AND schema_name IN ('pg_catalog', 'information_schema'))`,
};

function rewriteRelations(tokens: Token[], session: CatalogSession): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const previous = tokens[previousSignificant(tokens, i)];
    const name = nameOf(token);
    let replacement: string | null = null;
    let relation = '';
    let end = i;
    if (name !== null && !isPunct(previous, '.')) {
      if (name === 'information_schema') {
        const dot = nextSignificant(tokens, i);
        const member = nameOf(tokens[nextSignificant(tokens, dot)]);
        const view = member === null ? undefined : lookup(INFORMATION_SCHEMA, member);
        if (isPunct(tokens[dot], '.') && member !== null && view) {
          end = nextSignificant(tokens, dot);
          relation = member;
          replacement = view(session);
        }
      } else {
        const at = skipCatalogQualifier(tokens, i);
        const member = nameOf(tokens[at]);
        const build = member === null ? undefined : lookup(RELATIONS, member);
        if (member !== null && build && !isKeyword(previous, 'as')) {
          end = at;
          relation = member;
          replacement = build(session);
        }
      }
    }
    const following = tokens[nextSignificant(tokens, end)];
    if (replacement === null || isPunct(following, '.') || isPunct(following, '(')) {
      out.push(token);
      continue;
    }
    const hasAlias =
      isKeyword(following, 'as') || following?.kind === 'qident' || (following?.kind === 'ident' && !CLAUSE_WORDS.has(following.text.toLowerCase()));
    out.push(raw(`(${replacement})${hasAlias ? '' : ` AS ${relation}`}`));
    i = end;
  }
  return out;
}
