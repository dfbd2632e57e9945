import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { sqlString } from '../util/duckdb.js';

/** A node of DuckDB's own parse tree, as `json_serialize_sql` gives it. */
export type AstNode = { readonly [key: string]: unknown };

/**
 * DuckDB's own SQL parser, used to read view definitions: `json_serialize_sql` gives the parse tree of a
 * SELECT, `json_deserialize_sql` prints a tree back as SQL. Parsing with the engine that later runs the SQL
 * means a view is understood exactly as it will execute, never by a regex.
 */
export class SqlParser {
  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
  ) {}

  static async open(): Promise<SqlParser> {
    const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
    return new SqlParser(instance, await instance.connect());
  }

  /**
   * The statements of `sql`, or the parser's error message. Only SELECT statements can be serialized; anything
   * else answers an error saying so.
   */
  async parse(sql: string): Promise<{ statements: AstNode[] } | { error: string }> {
    const reader = await this.connection.runAndReadAll(`SELECT json_serialize_sql(${sqlString(sql)})`);
    const parsed = JSON.parse(String(reader.getRows()[0]![0])) as {
      error: boolean;
      error_message?: string;
      statements?: { node: AstNode }[];
    };
    if (parsed.error) return { error: parsed.error_message ?? 'cannot parse' };
    return { statements: (parsed.statements ?? []).map((statement) => statement.node) };
  }

  /** An expression tree printed back as SQL text. */
  async expressionSql(expression: AstNode): Promise<string> {
    // Without its `query_location`s, which only point into the source text: a node DuckDB synthesizes (the cast
    // of `TIMESTAMP '...'`, the `to_days(...)` of `INTERVAL 1 DAY`) carries 2^64 - 1 there, which JSON.parse
    // cannot hold exactly, and json_deserialize_sql refuses the rounded number.
    expression = withoutQueryLocations(expression) as AstNode;
    const statement = {
      error: false,
      statements: [
        {
          node: {
            type: 'SELECT_NODE',
            modifiers: [],
            cte_map: { map: [] },
            select_list: [{ ...expression, alias: '' }],
            from_table: { type: 'EMPTY', alias: '', sample: null },
            where_clause: null,
            group_expressions: [],
            group_sets: [],
            aggregate_handling: 'STANDARD_HANDLING',
            having: null,
            sample: null,
            qualify: null,
          },
        },
      ],
    };
    const reader = await this.connection.runAndReadAll(`SELECT json_deserialize_sql(${sqlString(JSON.stringify(statement))})`);
    const text = String(reader.getRows()[0]![0]);
    if (!text.startsWith('SELECT ')) throw new Error(`unexpected SQL from the parser: ${text}`);
    return text.slice('SELECT '.length);
  }

  /** Every aggregate function the engine knows, so a view's unsupported aggregate is named as one. */
  async aggregateNames(): Promise<Set<string>> {
    const reader = await this.connection.runAndReadAll(
      "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'aggregate'",
    );
    return new Set(reader.getRows().map((row) => String(row[0])));
  }

  async close(): Promise<void> {
    this.connection.closeSync();
    this.instance.closeSync();
  }
}

function withoutQueryLocations(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutQueryLocations);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(Object.entries(node).filter(([key]) => key !== 'query_location').map(([key, value]) => [key, withoutQueryLocations(value)]));
}
