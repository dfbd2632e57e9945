/**
 * The run-time settings a PostgreSQL client sees on a connection: what the server reports at start-up
 * (ParameterStatus), what SHOW and current_setting() answer, and what SET changes. Strata's SQL does not
 * depend on any of them; they exist because clients ask before their first query, and some refuse to go on
 * without the answer they expect (the JDBC driver insists on client_encoding UTF8 and DateStyle ISO).
 */
import { createRequire } from 'node:module';
import { version as duckdbVersion } from '@duckdb/node-api';
import { lookup } from './sql-text.js';

/** The PostgreSQL version Strata claims: clients pick their catalog queries by it (psql's by its major). */
export const SERVER_VERSION = '15.0';
export const SERVER_VERSION_NUM = '150000';

function strataVersion(): string {
  try {
    // src/pgwire and dist/pgwire are both two levels below the package root.
    const pkg = createRequire(import.meta.url)('../../package.json') as { version?: string };
    return pkg.version ?? 'dev';
  } catch {
    return 'dev';
  }
}

/** What `SELECT version()` answers: PostgreSQL's shape, so that clients parsing it find a version. */
export const VERSION_STRING = `PostgreSQL ${SERVER_VERSION} (Strata ${strataVersion()}, DuckDB ${duckdbVersion()}) on x86_64-pc-linux-gnu, 64-bit`;

/**
 * Settings whose value Strata fixes, because its answers are always written that way: a SET to another value
 * is acknowledged with a notice and changes nothing.
 */
export const FIXED_SETTINGS: Readonly<Record<string, string>> = {
  server_version: `${SERVER_VERSION} (Strata)`,
  server_version_num: SERVER_VERSION_NUM,
  server_encoding: 'UTF8',
  client_encoding: 'UTF8',
  datestyle: 'ISO, MDY',
  intervalstyle: 'postgres',
  timezone: 'UTC',
  integer_datetimes: 'on',
  standard_conforming_strings: 'on',
  bytea_output: 'hex',
  transaction_read_only: 'on',
  default_transaction_read_only: 'on',
  is_superuser: 'off',
  max_identifier_length: '63',
};

/** Settings a client may change (SET answers what it was given), with their initial values. */
const DEFAULT_SETTINGS: Readonly<Record<string, string>> = {
  application_name: '',
  search_path: 'main',
  transaction_isolation: 'read committed',
  default_transaction_isolation: 'read committed',
  extra_float_digits: '1',
  statement_timeout: '0',
  lock_timeout: '0',
  idle_in_transaction_session_timeout: '0',
  client_min_messages: 'notice',
  lc_messages: 'C',
  lc_monetary: 'C',
  lc_numeric: 'C',
  lc_time: 'C',
  lc_collate: 'C',
  lc_ctype: 'C',
  jit: 'off',
  row_security: 'off',
  max_connections: '64',
};

/** The parameters reported with ParameterStatus at start-up, in PostgreSQL's spelling. */
export const REPORTED_SETTINGS = [
  'server_version',
  'server_encoding',
  'client_encoding',
  'DateStyle',
  'IntervalStyle',
  'TimeZone',
  'integer_datetimes',
  'standard_conforming_strings',
  'is_superuser',
  'session_authorization',
  'application_name',
  'default_transaction_read_only',
] as const;

/** How PostgreSQL spells a setting it reports (SHOW's column name uses the name as given). */
const SPELLING: Readonly<Record<string, string>> = { datestyle: 'DateStyle', intervalstyle: 'IntervalStyle', timezone: 'TimeZone' };

/** Keys are lower case, as PostgreSQL matches setting names. */
export class SessionSettings {
  private readonly values = new Map<string, string>();

  constructor(user: string, startup: Readonly<Record<string, string>>) {
    for (const [name, value] of Object.entries(DEFAULT_SETTINGS)) this.values.set(name, value);
    this.values.set('session_authorization', user);
    // The start-up packet may carry settings (application_name, extra_float_digits, DateStyle...).
    for (const [name, value] of Object.entries(startup)) {
      if (name === 'user' || name === 'database' || name === 'options' || name === 'replication') continue;
      this.set(name, value);
    }
  }

  /** The value, or undefined for a setting Strata does not know. */
  get(name: string): string | undefined {
    const key = name.toLowerCase();
    return lookup(FIXED_SETTINGS, key) ?? this.values.get(key);
  }

  /**
   * Changes a setting. Answers a notice to send when the value is one Strata fixes and the request differs
   * (the setting keeps its value), else null. Unknown names are kept, as PostgreSQL keeps custom settings.
   */
  set(name: string, value: string): string | null {
    const key = name.toLowerCase();
    const fixed = lookup(FIXED_SETTINGS, key);
    if (fixed !== undefined) {
      if (sameSetting(key, fixed, value)) return null;
      return `Strata keeps ${spelling(key)} = '${fixed}'; the SET was ignored`;
    }
    this.values.set(key, value);
    return null;
  }

  /** RESET: back to the default (or forgotten when it has none). */
  reset(name: string): void {
    const key = name.toLowerCase();
    const initial = lookup(DEFAULT_SETTINGS, key);
    if (initial === undefined) this.values.delete(key);
    else this.values.set(key, initial);
  }

  resetAll(): void {
    const user = this.values.get('session_authorization') ?? '';
    this.values.clear();
    for (const [name, value] of Object.entries(DEFAULT_SETTINGS)) this.values.set(name, value);
    this.values.set('session_authorization', user);
  }

  /** Every setting, for SHOW ALL and pg_settings, sorted by name. */
  all(): [string, string][] {
    const merged = new Map(this.values);
    for (const [name, value] of Object.entries(FIXED_SETTINGS)) merged.set(name, value);
    return [...merged.entries()].sort(([a], [b]) => a.localeCompare(b));
  }
}

/** PostgreSQL's spelling of a setting name (`TimeZone`, `DateStyle`), for column names and notices. */
export function spelling(name: string): string {
  return lookup(SPELLING, name.toLowerCase()) ?? name.toLowerCase();
}

function sameSetting(key: string, fixed: string, value: string): boolean {
  const given = value.trim().replace(/^'(.*)'$/, '$1').toLowerCase();
  if (key === 'datestyle') return given.split(',').some((part) => part.trim() === 'iso');
  if (key === 'client_encoding' || key === 'server_encoding') return given.replace(/[-_]/g, '') === 'utf8' || given === 'unicode';
  if (key === 'timezone') return ['utc', 'etc/utc', 'gmt', 'z', 'zulu', 'universal', '+00', '+00:00', '0'].includes(given);
  if (fixed === 'on') return ['on', 'true', '1', 'yes'].includes(given);
  if (fixed === 'off') return ['off', 'false', '0', 'no'].includes(given);
  return given === fixed.toLowerCase();
}
