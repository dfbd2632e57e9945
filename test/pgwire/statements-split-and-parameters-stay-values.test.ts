import { describe, expect, it } from 'vitest';
import { classify } from '../../src/pgwire/commands.js';
import { parameterLiteral } from '../../src/pgwire/parameters.js';
import { joinTokens, parameterCount, splitStatements, tokenize } from '../../src/pgwire/sql-text.js';
import { OID } from '../../src/pgwire/types.js';

describe('the SQL text of a Query message', () => {
  it('splits at top-level semicolons only: never inside strings, quoted names, comments or dollar quotes', () => {
    const sql = `SELECT 'a;b', "x;y", $$c;d$$, E'it\\'s;' -- e;f
      ; /* g; /* nested; */ h; */ SELECT 2;;  ;`;
    const statements = splitStatements(sql).map((tokens) => joinTokens(tokens).trim());
    expect(statements).toEqual([`SELECT 'a;b', "x;y", $$c;d$$, E'it\\'s;' -- e;f`, '/* g; /* nested; */ h; */ SELECT 2']);
  });

  it('gives back the text exactly when its tokens are joined', () => {
    const sql = "SELECT $1::int, 'x''y' AS \"q\"\"n\", 1.5e3, a.b FROM t WHERE c ~* '^x' -- end";
    expect(joinTokens(tokenize(sql))).toBe(sql);
  });

  it('counts $n parameters outside strings and comments', () => {
    const [tokens] = splitStatements("SELECT $1, '$7', $3 /* $9 */");
    expect(parameterCount(tokens!)).toBe(3);
  });

  it('tells session statements from queries', () => {
    const kind = (sql: string) => classify(splitStatements(sql)[0] ?? []);
    expect(kind("SET search_path TO main, pg_catalog")).toEqual({ kind: 'set', name: 'search_path', value: 'main, pg_catalog' });
    expect(kind("SET SESSION TIME ZONE 'UTC'")).toEqual({ kind: 'set', name: 'timezone', value: 'UTC' });
    expect(kind('SET extra_float_digits = 3')).toEqual({ kind: 'set', name: 'extra_float_digits', value: '3' });
    expect(kind('SET TRANSACTION ISOLATION LEVEL SERIALIZABLE')).toEqual({ kind: 'set', name: null, value: null });
    expect(kind('show transaction isolation level')).toEqual({ kind: 'show', name: 'transaction_isolation' });
    expect(kind('SHOW TABLES')).toEqual({ kind: 'show', name: 'tables' });
    expect(kind('start transaction read only')).toMatchObject({ kind: 'transaction', action: 'begin', tag: 'START TRANSACTION' });
    expect(kind('ROLLBACK TO SAVEPOINT a')).toMatchObject({ kind: 'transaction', action: 'rollback_to' });
    expect(kind('DEALLOCATE PREPARE s1')).toEqual({ kind: 'deallocate', name: 's1' });
    expect(kind('LISTEN x')).toMatchObject({ kind: 'refuse', code: '0A000' });
    expect(kind('WITH x AS (SELECT 1) SELECT * FROM x')).toEqual({ kind: 'query' });
    expect(kind('INSERT INTO t VALUES (1)')).toEqual({ kind: 'query' });
  });
});

describe('a Bind parameter becomes a literal, never SQL', () => {
  const text = (value: string, oid = 0) => parameterLiteral(Buffer.from(value), 0, oid, 1);

  it('quotes strings by doubling quotes; backslashes stay literal', () => {
    expect(text("it's'; DROP TABLE clicks; --")).toBe("'it''s''; DROP TABLE clicks; --'");
    expect(text('a\\b')).toBe("'a\\b'");
  });

  it('casts typed values, so that DuckDB checks them', () => {
    expect(text('42', OID.int4)).toBe("CAST('42' AS INTEGER)");
    expect(text("1'); DROP", OID.int8)).toBe("CAST('1''); DROP' AS BIGINT)");
    expect(text('2026-11-25 10:00:00+01', OID.timestamptz)).toBe("CAST('2026-11-25 10:00:00+01' AS TIMESTAMPTZ)");
  });

  it('accepts a numeric only when it is a number', () => {
    expect(text('-1.50', OID.numeric)).toBe('(-1.50)');
    expect(() => text('1; DROP TABLE clicks', OID.numeric)).toThrow(/invalid input syntax for type numeric/);
  });

  it('turns bytea into bytes, from the hex format or a binary parameter', () => {
    expect(text('\\x00ff', OID.bytea)).toBe("from_hex('00ff')");
    expect(parameterLiteral(Buffer.from([1, 2]), 1, 0, 1)).toBe("from_hex('0102')");
    expect(parameterLiteral(null, 0, OID.int4, 1)).toBe('CAST(NULL AS INTEGER)');
  });
});
