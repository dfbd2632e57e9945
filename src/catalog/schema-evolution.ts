import type { FieldSpec } from '../config/index.js';
import { SchemaError } from '../errors.js';
import type { SchemaChange } from './types.js';

/** Type changes every reader can follow: old values convert to the new type without loss. */
const WIDENINGS: Record<string, readonly string[]> = {
  int: ['bigint', 'double'],
};

const show = (field: FieldSpec) => `${field.type}${field.nullable ? '?' : ''}`;

/**
 * The change from `before` to `after`, or null when they are the same. Compatible changes only: columns
 * added, types widened (int to bigint or double), NOT NULL relaxed to nullable. Old files then read with
 * NULLs for new columns. Anything else (a column dropped or narrowed, a nullable made required) would make
 * existing data unreadable or wrong, and throws {@link SchemaError} naming the table and column.
 */
export function diffSchemas(table: string, before: readonly FieldSpec[], after: readonly FieldSpec[]): SchemaChange | null {
  const next = new Map(after.map((field) => [field.name, field]));
  const problems: string[] = [];
  const widened: { column: string; from: string; to: string }[] = [];
  const relaxed: string[] = [];
  for (const old of before) {
    const now = next.get(old.name);
    if (!now) {
      problems.push(`column "${old.name}" was dropped; existing data holds it (columns can be added, not removed)`);
      continue;
    }
    if (now.type !== old.type) {
      if (WIDENINGS[old.type]?.includes(now.type)) widened.push({ column: old.name, from: old.type, to: now.type });
      else problems.push(`column "${old.name}" would change from ${show(old)} to ${show(now)}, which narrows or converts existing data`);
    }
    if (old.nullable && !now.nullable) problems.push(`column "${old.name}" would become required, but existing rows may hold NULL`);
    else if (!old.nullable && now.nullable) relaxed.push(old.name);
  }
  if (problems.length > 0) throw new SchemaError(`table "${table}": incompatible schema change: ${problems.join('; ')}`);
  const known = new Set(before.map((field) => field.name));
  const added = after.filter((field) => !known.has(field.name)).map((field) => field.name);
  if (added.length === 0 && widened.length === 0 && relaxed.length === 0) return null;
  return { added, widened, relaxed };
}
