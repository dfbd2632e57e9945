import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { compileRecordValidator, parseTimestamp } from '../../src/ingest/index.js';

const config = parseConfig({
  streams: {
    all: {
      schema: {
        s: 'string', i: 'int?', b: 'bigint?', d: 'double?', t: 'boolean?', ts: 'timestamp?', day: 'date?', j: 'json?',
      },
    },
  },
});
const validate = compileRecordValidator(config.streams.get('all')!);

function check(record: Record<string, unknown>) {
  const copy = { ...record };
  const validation = validate(copy);
  return { error: typeof validation === 'object' ? validation : null, validation, record: copy };
}

const errorOf = (value: unknown) => {
  const validation = validate(value);
  return typeof validation === 'object' ? validation : null;
};

describe('record validation', () => {
  it('coerces lossless spellings to one canonical form', () => {
    const { error, record } = check({
      s: 'x', i: '42', b: '9007199254740993', d: '2.5', t: 'true', ts: '2026-11-25T11:30:00+01:00', day: '2026-02-28', j: { a: [1] },
    });
    expect(error).toBeNull();
    expect(record).toEqual({
      s: 'x', i: 42, b: '9007199254740993', d: 2.5, t: true, ts: '2026-11-25T10:30:00.000Z', day: '2026-02-28', j: { a: [1] },
    });
  });

  it.each([
    [{ s: 1 }, 's', /expected a string, got number 1/],
    [{ s: 'x', i: 1.5 }, 'i', /32-bit integer/],
    [{ s: 'x', i: 2 ** 31 }, 'i', /32-bit integer/],
    [{ s: 'x', b: 2 ** 60 }, 'b', /send integers beyond 2\^53 as decimal strings/],
    [{ s: 'x', b: '99999999999999999999' }, 'b', /outside the 64-bit integer range/],
    [{ s: 'x', d: 'abc' }, 'd', /expected a number/],
    [{ s: 'x', t: 'yes' }, 't', /expected true or false/],
    [{ s: 'x', ts: '2026-13-01T00:00:00Z' }, 'ts', /ISO-8601 timestamp/],
    [{ s: 'x', ts: 'yesterday' }, 'ts', /ISO-8601 timestamp/],
    [{ s: 'x', day: '2026-02-30' }, 'day', /expected a date/],
    [{}, 's', /is required/],
    [{ s: null }, 's', /must not be null/],
    [{ s: 'x', extra: 1 }, 'extra', /not in the schema of stream "all"/],
  ])('refuses %j naming field %s', (input, field, message) => {
    const { error } = check(input);
    expect(error?.field).toBe(field);
    expect(error?.message).toMatch(message);
  });

  it('refuses a record that is not an object', () => {
    expect(errorOf([1, 2])?.message).toMatch(/must be a JSON object, got an array/);
    expect(errorOf('x')?.message).toMatch(/must be a JSON object/);
  });

  it('accepts null and missing values for nullable fields', () => {
    expect(check({ s: 'x', i: null, ts: null }).error).toBeNull();
  });

  it('tells whether a record was already canonical, so its own text can be stored', () => {
    expect(check({ s: 'x', i: 1, ts: '2026-11-25T10:30:00.000Z' }).validation).toBe('unchanged');
    expect(check({ s: 'x', i: '1' }).validation).toBe('rewritten');
    expect(check({ s: 'x', ts: '2026-11-25T10:30:00Z' }).validation).toBe('rewritten');
  });
});

describe('timestamps', () => {
  it.each([
    ['2026-11-25T10:30:00Z', '2026-11-25T10:30:00.000Z'],
    ['2024-02-29T23:59:59.999Z', '2024-02-29T23:59:59.999Z'],
    ['2026-11-25 10:30:00', '2026-11-25T10:30:00.000Z'],
    ['2026-11-25T10:30:00.123456Z', '2026-11-25T10:30:00.123456Z'],
    ['2026-11-25T10:30:00.1Z', '2026-11-25T10:30:00.100Z'],
    ['2026-11-25T00:30:00-05:30', '2026-11-25T06:00:00.000Z'],
    ['2026-11-25T00:30:00+0200', '2026-11-24T22:30:00.000Z'],
    ['2026-11-25', '2026-11-25T00:00:00.000Z'],
    [1_795_602_600_000, '2026-11-25T10:30:00.000Z'],
  ])('%s → %s', (input, expected) => {
    expect(parseTimestamp(input)).toBe(expected);
  });

  it.each([
    '2026-11-25T25:00:00Z',
    '2026-11-25T10:30:00.1234567Z',
    '25/11/2026',
    '',
    // Canonical-looking but impossible instants, which the fast path must refuse too.
    '2026-02-29T10:30:00.000Z',
    '2026-11-31T10:30:00.000Z',
    '2026-11-25T24:00:00.000Z',
    '2026-11-25T10:60:00.000Z',
    '0000-01-01T00:00:00.000Z',
  ])('refuses %s', (input) => {
    expect(parseTimestamp(input)).toBeNull();
  });
});
