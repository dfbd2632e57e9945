import { z } from 'zod';

/**
 * The shape of a stream's `transform` block (issue 5). Only the structure is checked here; whether each rule can
 * apply to the stream's fields is checked by `resolveTransform` (transform-rules.ts), and `derive` expressions by
 * DuckDB when the transform compiles (src/transform). This module imports nothing of the config's own, so that
 * schema.ts can use it without an import cycle.
 */

/** Standardization operations, applied to a field in the order listed. */
export const STANDARDIZE_OPS = ['trim', 'collapse_spaces', 'lower', 'upper', 'null_if_empty', 'utc'] as const;
export type StandardizeOp = (typeof STANDARDIZE_OPS)[number];

const isOp = (value: unknown): value is StandardizeOp => (STANDARDIZE_OPS as readonly unknown[]).includes(value);

const op = z.enum(STANDARDIZE_OPS);

/** A zod union only says "Invalid input"; this names the operation that is wrong. */
function opsError(input: unknown): string {
  const expected = `expected one of ${STANDARDIZE_OPS.join(', ')}, or a list of them`;
  const unknown = typeof input === 'string' ? input : Array.isArray(input) ? input.find((item) => !isOp(item)) : undefined;
  if (typeof unknown === 'string') return `unknown operation ${JSON.stringify(unknown)}; ${expected}`;
  return expected;
}

const fieldName = z.string().min(1);

export const transformSchema = z.strictObject({
  /** Keep the first copy of each key; a copy within `within` (event time) of the copy before it is dropped. */
  dedupe: z
    .strictObject({
      key: z.union([fieldName, z.array(fieldName).min(1, 'names no key column')], { error: 'expected a field name or a non-empty list of field names' }),
      within: z.string(),
    })
    .optional(),
  /** Fields a clean record must hold (checked after defaults, standardize and map); a record without one is quarantined. */
  required: z.array(fieldName).optional(),
  /** A value for a field that arrives NULL (JSON values, fitting the field's type). */
  defaults: z.record(z.string(), z.unknown()).optional(),
  /** Per field, one operation or a list of them, applied in order. */
  standardize: z.record(z.string(), z.union([op, z.array(op).min(1, 'lists no operation')], { error: (issue) => opsError(issue.input) })).optional(),
  /** Per string field, values replaced by others (or by null), compared after standardization. */
  map: z.record(z.string(), z.record(z.string(), z.string().nullable())).optional(),
  /** New columns from SQL scalar expressions over the clean fields and the columns derived before them. */
  derive: z.record(z.string(), z.string().trim().min(1, 'is an empty expression')).optional(),
});

/** A `transform` block as a user writes it. */
export type TransformInput = z.input<typeof transformSchema>;
