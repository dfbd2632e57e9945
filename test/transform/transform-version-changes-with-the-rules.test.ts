import { describe, expect, it } from 'vitest';
import type { TransformInput } from '../../src/config/index.js';
import { CLICKS_SCHEMA, planFor } from './support.js';

const BASE = {
  dedupe: { key: 'event_id', within: '24h' },
  required: ['user_id', 'page'],
  defaults: { country: 'unknown', qty: 1 },
  standardize: { page: ['trim', 'lower'], country: ['trim', 'upper'], local_time: 'utc' },
  map: { country: { UK: 'GB', EN: 'GB' } },
  derive: { revenue_cents: 'CAST(round(amount * 100) AS BIGINT)', big: 'revenue_cents > 100' },
} satisfies TransformInput;

const versionOf = async (transform: TransformInput, schema?: Record<string, string>) => (await planFor(transform, schema)).version;

describe("a transform's version", () => {
  it('is a stable digest: the same rules compile to the same version', async () => {
    const version = await versionOf(BASE);
    expect(version).toMatch(/^[0-9a-f]{16}$/);
    expect(await versionOf(structuredClone(BASE))).toBe(version);
  });

  it.each([
    ['standardize keys in another order', { ...BASE, standardize: { local_time: 'utc', country: ['trim', 'upper'], page: ['trim', 'lower'] } }],
    ['a single operation written as a list', { ...BASE, standardize: { ...BASE.standardize, local_time: ['utc'] } }],
    ['map entries in another order', { ...BASE, map: { country: { EN: 'GB', UK: 'GB' } } }],
    ['defaults in another order', { ...BASE, defaults: { qty: 1, country: 'unknown' } }],
    ['the window in other units', { ...BASE, dedupe: { key: ['event_id'], within: '1d' } }],
    ['a derive expression spaced differently', { ...BASE, derive: { ...BASE.derive, revenue_cents: 'CAST( round( amount*100 ) AS bigint )' } }],
  ])('does not change with %s', async (_, transform) => {
    expect(await versionOf(transform as TransformInput)).toBe(await versionOf(BASE));
  });

  it('does not change when the schema gains a field no rule names', async () => {
    expect(await versionOf(BASE, { ...CLICKS_SCHEMA, referrer: 'string?' })).toBe(await versionOf(BASE));
  });

  it.each([
    ['a required field more', { ...BASE, required: [...BASE.required, 'country'] }],
    ['required fields in another order (the reason names the first)', { ...BASE, required: ['page', 'user_id'] }],
    ['another default', { ...BASE, defaults: { ...BASE.defaults, country: 'n/a' } }],
    ['an operation more', { ...BASE, standardize: { ...BASE.standardize, page: ['trim', 'lower', 'collapse_spaces'] } }],
    ['operations in another order', { ...BASE, standardize: { ...BASE.standardize, page: ['lower', 'trim'] } }],
    ['another map target', { ...BASE, map: { country: { UK: 'GB', EN: 'UK' } } }],
    ['another derive expression', { ...BASE, derive: { ...BASE.derive, big: 'revenue_cents > 1000' } }],
    ['a derived column renamed', { ...BASE, derive: { revenue_cents: BASE.derive.revenue_cents, large: 'revenue_cents > 100' } }],
    ['another window', { ...BASE, dedupe: { key: 'event_id', within: '12h' } }],
    ['another dedupe key', { ...BASE, dedupe: { key: ['event_id', 'user_id'], within: '24h' } }],
    ['no dedupe', { ...BASE, dedupe: undefined }],
  ])('changes with %s', async (_, transform) => {
    expect(await versionOf(transform as TransformInput)).not.toBe(await versionOf(BASE));
  });

  it('changes when a field the rules name changes type', async () => {
    expect(await versionOf(BASE, { ...CLICKS_SCHEMA, qty: 'bigint?' })).not.toBe(await versionOf(BASE));
  });
});
