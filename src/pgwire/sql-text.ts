/**
 * A lexer for the SQL that PostgreSQL clients send, just deep enough for what the wire endpoint must do to the
 * text before DuckDB sees it: split a simple Query into statements, find `$n` placeholders, recognise the
 * session statements answered here (SET, SHOW, BEGIN...), and rewrite catalog queries. Everything outside
 * string literals, quoted identifiers and comments is tokenised, so a `;` or `$1` inside a string is never
 * mistaken for syntax.
 */

export type TokenKind =
  | 'space' // whitespace
  | 'comment' // -- line or /* block */ (nested, as PostgreSQL allows)
  | 'string' // '...', E'...', X'...', B'...', N'...', U&'...', $tag$...$tag$
  | 'ident' // an unquoted name or keyword
  | 'qident' // "a quoted name"
  | 'param' // $1
  | 'number'
  | 'op' // + - * / < > = ~ ! @ # % ^ & | ` ? and their runs, and ::
  | 'punct' // ( ) [ ] , ; . :
  | 'raw'; // text a rewrite put in place of tokens: one opaque operand, never lexed again

export interface Token {
  readonly kind: TokenKind;
  readonly text: string;
}

const IDENT_START = /[A-Za-z_\u0080-\uffff]/;
const IDENT_PART = /[A-Za-z0-9_$\u0080-\uffff]/;
const OP_CHARS = '+-*/<>=~!@#%^&|`?';

/**
 * Splits `sql` into tokens; concatenating their texts gives `sql` back exactly. Unterminated strings, quoted
 * names and comments run to the end of the text (DuckDB reports the syntax error then).
 */
export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const push = (kind: TokenKind, end: number) => {
    tokens.push({ kind, text: sql.slice(i, end) });
    i = end;
  };
  while (i < sql.length) {
    const c = sql[i]!;
    const next = sql[i + 1] ?? '';
    if (/\s/.test(c)) {
      let end = i + 1;
      while (end < sql.length && /\s/.test(sql[end]!)) end++;
      push('space', end);
    } else if (c === '-' && next === '-') {
      const newline = sql.indexOf('\n', i);
      push('comment', newline === -1 ? sql.length : newline + 1);
    } else if (c === '/' && next === '*') {
      push('comment', blockCommentEnd(sql, i));
    } else if (c === "'") {
      push('string', quotedEnd(sql, i + 1, "'", false));
    } else if ((c === 'E' || c === 'e') && next === "'") {
      push('string', quotedEnd(sql, i + 2, "'", true));
    } else if (/[XxBbNn]/.test(c) && next === "'") {
      push('string', quotedEnd(sql, i + 2, "'", false));
    } else if ((c === 'U' || c === 'u') && next === '&' && (sql[i + 2] === "'" || sql[i + 2] === '"')) {
      const quote = sql[i + 2]!;
      push(quote === "'" ? 'string' : 'qident', quotedEnd(sql, i + 3, quote, false));
    } else if (c === '"') {
      push('qident', quotedEnd(sql, i + 1, '"', false));
    } else if (c === '$' && /[0-9]/.test(next)) {
      let end = i + 1;
      while (end < sql.length && /[0-9]/.test(sql[end]!)) end++;
      push('param', end);
    } else if (c === '$') {
      const tag = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        push('string', close === -1 ? sql.length : close + tag[0].length);
      } else {
        push('op', i + 1);
      }
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(next))) {
      const match = /^(0[xX][0-9A-Fa-f_]+|0[oO][0-7_]+|0[bB][01_]+|(\d[\d_]*)?(\.\d*)?([eE][+-]?\d+)?)/.exec(sql.slice(i))!;
      push('number', i + Math.max(1, match[0].length));
    } else if (IDENT_START.test(c)) {
      let end = i + 1;
      while (end < sql.length && IDENT_PART.test(sql[end]!)) end++;
      push('ident', end);
    } else if (c === ':' && next === ':') {
      push('op', i + 2);
    } else if (OP_CHARS.includes(c)) {
      let end = i + 1;
      // An operator never swallows the start of a comment that follows it.
      while (end < sql.length && OP_CHARS.includes(sql[end]!) && !/^(--|\/\*)/.test(sql.slice(end, end + 2))) end++;
      push('op', end);
    } else {
      push('punct', i + 1);
    }
  }
  return tokens;
}

function blockCommentEnd(sql: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql.startsWith('/*', i)) {
      depth++;
      i += 2;
    } else if (sql.startsWith('*/', i)) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return sql.length;
}

/** The end (exclusive) of a quoted string or name whose body starts at `start`; a doubled quote is one quote. */
function quotedEnd(sql: string, start: number, quote: string, backslashEscapes: boolean): number {
  let i = start;
  while (i < sql.length) {
    const c = sql[i]!;
    if (backslashEscapes && c === '\\') {
      i += 2;
    } else if (c === quote) {
      if (sql[i + 1] === quote) i += 2;
      else return i + 1;
    } else {
      i++;
    }
  }
  return sql.length;
}

/** Whitespace and comments: tokens that carry no syntax. */
export function isBlank(token: Token): boolean {
  return token.kind === 'space' || token.kind === 'comment';
}

/** The statements of a simple Query message, split at top-level semicolons; blank statements are kept out. */
export function splitStatements(sql: string): Token[][] {
  const statements: Token[][] = [];
  let current: Token[] = [];
  for (const token of tokenize(sql)) {
    if (token.kind === 'punct' && token.text === ';') {
      statements.push(current);
      current = [];
    } else {
      current.push(token);
    }
  }
  statements.push(current);
  return statements.filter((statement) => statement.some((token) => !isBlank(token)));
}

/** The text of tokens, joined. */
export function joinTokens(tokens: readonly Token[]): string {
  return tokens.map((token) => token.text).join('');
}

/** The significant (non-blank) tokens. */
export function significant(tokens: readonly Token[]): Token[] {
  return tokens.filter((token) => !isBlank(token));
}

/** An unquoted name folded to lower case as PostgreSQL folds it, or a quoted one unquoted; null otherwise. */
export function nameOf(token: Token | undefined): string | null {
  if (token === undefined) return null;
  if (token.kind === 'ident') return token.text.toLowerCase();
  if (token.kind === 'qident' && token.text.startsWith('"')) return token.text.slice(1, -1).replace(/""/g, '"');
  return null;
}

/** True if the token is the unquoted keyword `word` (any case). */
export function isKeyword(token: Token | undefined, word: string): boolean {
  return token?.kind === 'ident' && token.text.toLowerCase() === word;
}

/** The highest `$n` the statement uses (0 when none): its parameter count, as PostgreSQL counts it. */
export function parameterCount(tokens: readonly Token[]): number {
  let max = 0;
  for (const token of tokens) {
    if (token.kind === 'param') max = Math.max(max, Number(token.text.slice(1)));
  }
  return max;
}

/**
 * The value of a string literal token: '...' with doubled quotes, E'...' with backslash escapes, $$...$$.
 * Null for other kinds of string (bit strings, U&'...').
 */
export function stringValue(token: Token | undefined): string | null {
  if (token?.kind !== 'string') return null;
  const text = token.text;
  if (text.startsWith("'")) return text.slice(1, -1).replace(/''/g, "'");
  if (/^[Nn]'/.test(text)) return text.slice(2, -1).replace(/''/g, "'");
  if (/^[Ee]'/.test(text)) return unescapeBackslashes(text.slice(2, -1));
  const dollar = /^(\$[^$]*\$)([\s\S]*)\1$/.exec(text);
  return dollar ? dollar[2]! : null;
}

function unescapeBackslashes(body: string): string {
  return body.replace(/''/g, "'").replace(/\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)/g, (_all, code: string) => {
    if (/^x/.test(code)) return String.fromCharCode(parseInt(code.slice(1), 16));
    if (/^[0-7]/.test(code)) return String.fromCharCode(parseInt(code, 8));
    if (/^[uU]/.test(code)) return String.fromCodePoint(parseInt(code.slice(1), 16));
    return ({ b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' } as Record<string, string>)[code] ?? code;
  });
}

/** A SQL string literal of `value` (standard conforming: only the quote is doubled, backslashes are literal). */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** A SQL quoted identifier. */
export function quoteName(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Index of the next significant token after `i`, or `tokens.length`. */
export function nextSignificant(tokens: readonly Token[], i: number): number {
  let j = i + 1;
  while (j < tokens.length && isBlank(tokens[j]!)) j++;
  return j;
}

/** Index of the previous significant token before `i`, or -1. */
export function previousSignificant(tokens: readonly Token[], i: number): number {
  let j = i - 1;
  while (j >= 0 && isBlank(tokens[j]!)) j--;
  return j;
}

export function isPunct(token: Token | undefined, text: string): boolean {
  return token?.kind === 'punct' && token.text === text;
}

/** Index of the bracket closing the one at `open` (`(` or `[`), or -1 when it is never closed. */
export function closingBracket(tokens: readonly Token[], open: number): number {
  const opener = tokens[open]!.text;
  const closer = opener === '(' ? ')' : ']';
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.kind !== 'punct') continue;
    if (token.text === opener) depth++;
    else if (token.text === closer && --depth === 0) return i;
  }
  return -1;
}

/** Index of the bracket opening the one at `close` (`)` or `]`), or -1. */
export function openingBracket(tokens: readonly Token[], close: number): number {
  const closer = tokens[close]!.text;
  const opener = closer === ')' ? '(' : '[';
  let depth = 0;
  for (let i = close; i >= 0; i--) {
    const token = tokens[i]!;
    if (token.kind !== 'punct') continue;
    if (token.text === closer) depth++;
    else if (token.text === opener && --depth === 0) return i;
  }
  return -1;
}

/** The comma-separated parts of the tokens strictly between brackets `open` and `close`. */
export function splitArguments(tokens: readonly Token[], open: number, close: number): Token[][] {
  const parts: Token[][] = [[]];
  let depth = 0;
  for (let i = open + 1; i < close; i++) {
    const token = tokens[i]!;
    if (token.kind === 'punct' && (token.text === '(' || token.text === '[')) depth++;
    if (token.kind === 'punct' && (token.text === ')' || token.text === ']')) depth--;
    if (depth === 0 && isPunct(token, ',')) parts.push([]);
    else parts[parts.length - 1]!.push(token);
  }
  return parts.length === 1 && parts[0]!.every(isBlank) ? [] : parts;
}

/** A token standing for already-rewritten text. */
export function raw(text: string): Token {
  return { kind: 'raw', text };
}

/** `record[key]` when `key` is the record's own entry: client-supplied names never reach Object.prototype. */
export function lookup<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
