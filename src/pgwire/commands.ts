/**
 * What a statement is, as far as the wire endpoint cares: a query for the SQL engine, or one of the session
 * statements PostgreSQL clients send around their queries (SET, SHOW, BEGIN, DISCARD...), which Strata answers
 * itself because its SQL engine is read-only and has no sessions.
 */
import { isBlank, isKeyword, isPunct, joinTokens, nameOf, significant, stringValue, type Token } from './sql-text.js';

export type Command =
  | { readonly kind: 'empty' }
  /** Run by the SQL engine. */
  | { readonly kind: 'query' }
  /** SET name = value; name null for the forms that change nothing here (SET ROLE, SET TRANSACTION...). */
  | { readonly kind: 'set'; readonly name: string | null; readonly value: string | null }
  /** RESET name, or RESET ALL (name null). */
  | { readonly kind: 'reset'; readonly name: string | null }
  /** SHOW name: answered here when the name is a setting, else by DuckDB (SHOW TABLES, SHOW clicks). */
  | { readonly kind: 'show'; readonly name: string }
  | { readonly kind: 'transaction'; readonly action: TransactionAction; readonly tag: string }
  | { readonly kind: 'deallocate'; readonly name: string | null }
  | { readonly kind: 'discard'; readonly tag: string; readonly all: boolean }
  /** Acknowledged with a tag and nothing else (UNLISTEN). */
  | { readonly kind: 'noop'; readonly tag: string }
  /** Refused with a SQLSTATE (features the endpoint does not have). */
  | { readonly kind: 'refuse'; readonly code: string; readonly message: string };

export type TransactionAction = 'begin' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'rollback_to';

/** Settings PostgreSQL names with more than one word (SHOW TIME ZONE, SET TIME ZONE). */
const MULTIWORD_SETTINGS: readonly [readonly string[], string][] = [
  [['time', 'zone'], 'timezone'],
  [['transaction', 'isolation', 'level'], 'transaction_isolation'],
  [['session', 'authorization'], 'session_authorization'],
];

export function classify(tokens: readonly Token[]): Command {
  const words = significant(tokens);
  if (words.length === 0) return { kind: 'empty' };
  const first = words[0]!.kind === 'ident' ? words[0]!.text.toLowerCase() : '';
  const second = words[1]?.kind === 'ident' ? words[1].text.toLowerCase() : '';
  switch (first) {
    case 'set':
      return classifySet(words.slice(1));
    case 'reset':
      return { kind: 'reset', name: second === 'all' ? null : settingName(words.slice(1)) };
    case 'show':
      return words.length > 1 ? { kind: 'show', name: settingName(words.slice(1)) ?? '' } : { kind: 'query' };
    case 'begin':
      return { kind: 'transaction', action: 'begin', tag: 'BEGIN' };
    case 'start':
      return second === 'transaction' ? { kind: 'transaction', action: 'begin', tag: 'START TRANSACTION' } : { kind: 'query' };
    case 'commit':
    case 'end':
      if (second === 'prepared') return refuseTwoPhase();
      return { kind: 'transaction', action: 'commit', tag: 'COMMIT' };
    case 'abort':
      return { kind: 'transaction', action: 'rollback', tag: 'ROLLBACK' };
    case 'rollback': {
      if (second === 'prepared') return refuseTwoPhase();
      const to = words.findIndex((word) => isKeyword(word, 'to'));
      return to === -1 ? { kind: 'transaction', action: 'rollback', tag: 'ROLLBACK' } : { kind: 'transaction', action: 'rollback_to', tag: 'ROLLBACK' };
    }
    case 'savepoint':
      return { kind: 'transaction', action: 'savepoint', tag: 'SAVEPOINT' };
    case 'release':
      return { kind: 'transaction', action: 'release', tag: 'RELEASE' };
    case 'prepare':
      return second === 'transaction' ? refuseTwoPhase() : { kind: 'refuse', code: '0A000', message: 'PREPARE is not supported here; use the extended query protocol' };
    case 'deallocate': {
      const rest = words.slice(isKeyword(words[1], 'prepare') ? 2 : 1);
      return { kind: 'deallocate', name: isKeyword(rest[0], 'all') ? null : (nameOf(rest[0]) ?? '') };
    }
    case 'discard': {
      const what = second.toUpperCase();
      return { kind: 'discard', tag: `DISCARD ${what}`, all: what === 'ALL' };
    }
    case 'unlisten':
      return { kind: 'noop', tag: 'UNLISTEN' };
    case 'listen':
    case 'notify':
      return { kind: 'refuse', code: '0A000', message: `${first.toUpperCase()} is not supported: Strata has no notifications` };
    case 'declare':
    case 'fetch':
    case 'move':
    case 'close':
      return { kind: 'refuse', code: '0A000', message: 'cursors are not supported; use the extended query protocol, whose Execute takes a row limit' };
    default:
      return { kind: 'query' };
  }
}

function refuseTwoPhase(): Command {
  return { kind: 'refuse', code: '0A000', message: 'prepared transactions are not supported' };
}

/** The setting a SHOW or RESET names: one name, or a multi-word one. */
function settingName(words: readonly Token[]): string | null {
  for (const [parts, name] of MULTIWORD_SETTINGS) {
    if (parts.every((part, i) => isKeyword(words[i], part))) return name;
  }
  return nameOf(words[0]);
}

function classifySet(words: readonly Token[]): Command {
  let rest = [...words];
  if (isKeyword(rest[0], 'session') && !isKeyword(rest[1], 'authorization') && !isKeyword(rest[1], 'characteristics')) rest = rest.slice(1);
  else if (isKeyword(rest[0], 'local')) rest = rest.slice(1);
  // Forms that change what Strata does not have: roles, transaction modes, constraints.
  if (['role', 'transaction', 'constraints'].some((word) => isKeyword(rest[0], word)) || isKeyword(rest[0], 'session')) {
    return { kind: 'set', name: null, value: null };
  }
  if (isKeyword(rest[0], 'time') && isKeyword(rest[1], 'zone')) return { kind: 'set', name: 'timezone', value: settingValue(rest.slice(2)) };
  if (isKeyword(rest[0], 'names')) return { kind: 'set', name: 'client_encoding', value: settingValue(rest.slice(1)) };
  if (isKeyword(rest[0], 'schema')) return { kind: 'set', name: 'search_path', value: settingValue(rest.slice(1)) };
  const name = nameOf(rest[0]);
  // A dotted name (custom settings: SET myapp.mode = x).
  let at = 1;
  let fullName = name;
  while (isPunct(rest[at], '.') && nameOf(rest[at + 1]) !== null) {
    fullName = `${fullName}.${nameOf(rest[at + 1])}`;
    at += 2;
  }
  if (fullName === null) return { kind: 'set', name: null, value: null };
  const assign = rest[at];
  if (!(isKeyword(assign, 'to') || (assign?.kind === 'op' && assign.text === '='))) return { kind: 'set', name: null, value: null };
  return { kind: 'set', name: fullName, value: settingValue(rest.slice(at + 1)) };
}

/** The value of SET: strings unquoted, names and numbers as written, a list joined with ", "; null for DEFAULT. */
function settingValue(words: readonly Token[]): string | null {
  if (words.length === 1 && (isKeyword(words[0], 'default') || isKeyword(words[0], 'local'))) return null;
  const parts: string[] = [];
  let current = '';
  for (const word of words) {
    if (isBlank(word)) continue;
    if (isPunct(word, ',')) {
      parts.push(current);
      current = '';
      continue;
    }
    current += stringValue(word) ?? (word.kind === 'qident' ? word.text : joinTokens([word]));
  }
  parts.push(current);
  return parts.join(', ');
}
