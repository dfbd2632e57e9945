import { describe, expect, it } from 'vitest';
import { parseConfig, type ConfigInput, type TransformInput } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { clicksWith, CLICKS_SCHEMA } from './support.js';

/** A config whose transform is given as plain JSON, as a user's strata.config.json would hold it. */
const withTransform = (transform: unknown, schema?: Record<string, string>): ConfigInput => clicksWith(transform as TransformInput, schema);

describe('the transform block of a stream', () => {
  it('accepts the shape of issue 5 and keeps every rule in declaration order', () => {
    const config = parseConfig(
      withTransform({
        dedupe: { key: 'event_id', within: '24h' },
        required: ['user_id', 'ts'],
        defaults: { country: 'unknown', qty: 1 },
        standardize: { page: ['trim', 'lower'], country: ['trim', 'upper'], ts: 'utc' },
        map: { country: { UK: 'GB' } },
        derive: { revenue_cents: 'CAST(round(amount * 100) AS BIGINT)', big: 'revenue_cents > 100' },
      }),
    );
    const rules = config.streams.get('clicks')!.transform!;
    expect(rules.dedupe).toEqual({ keys: ['event_id'], within: '24h' });
    expect(rules.required).toEqual(['user_id', 'ts']);
    expect([...rules.defaults]).toEqual([
      ['country', 'unknown'],
      ['qty', 1],
    ]);
    expect([...rules.standardize]).toEqual([
      ['page', ['trim', 'lower']],
      ['country', ['trim', 'upper']],
      ['ts', ['utc']],
    ]);
    expect([...rules.map.get('country')!]).toEqual([['UK', 'GB']]);
    expect([...rules.derive.keys()]).toEqual(['revenue_cents', 'big']);
  });

  it('leaves a stream without rules, or with an empty block, with no transform', () => {
    expect(parseConfig(clicksWith({})).streams.get('clicks')!.transform).toBeUndefined();
    const plain = clicksWith({});
    delete plain.streams!.clicks!.transform;
    expect(parseConfig(plain).streams.get('clicks')!.transform).toBeUndefined();
  });

  it.each([
    // structure
    [{ requird: ['user_id'] }, /streams\.clicks\.transform: unknown key\(s\) "requird"/],
    [{ required: 'user_id' }, /streams\.clicks\.transform\.required: /],
    [{ standardize: { page: 'lowr' } }, /streams\.clicks\.transform\.standardize\.page: unknown operation "lowr"; expected one of trim, /],
    [{ standardize: { page: ['trim', 'squash'] } }, /standardize\.page: unknown operation "squash"/],
    [{ standardize: { page: [] } }, /standardize\.page: lists no operation/],
    [{ map: { country: { UK: 44 } } }, /streams\.clicks\.transform\.map\.country\.UK: /],
    [{ derive: { cents: '  ' } }, /streams\.clicks\.transform\.derive\.cents: is an empty expression/],
    [{ dedupe: { key: [], within: '1h' } }, /streams\.clicks\.transform\.dedupe\.key: names no key column/],
    [{ dedupe: { key: 3, within: '1h' } }, /streams\.clicks\.transform\.dedupe\.key: expected a field name or a non-empty list/],
    [{ dedupe: { key: 'event_id' } }, /streams\.clicks\.transform\.dedupe\.within: /],
    // unknown columns
    [{ required: ['usr'] }, /streams\.clicks\.transform\.required: "usr" is not a field of the schema/],
    [{ required: ['page', 'page'] }, /transform\.required: lists "page" twice/],
    [{ defaults: { cntry: 'x' } }, /streams\.clicks\.transform\.defaults\.cntry: "cntry" is not a field of the schema/],
    [{ standardize: { pg: 'trim' } }, /streams\.clicks\.transform\.standardize\.pg: "pg" is not a field of the schema/],
    [{ map: { cntry: { UK: 'GB' } } }, /streams\.clicks\.transform\.map\.cntry: "cntry" is not a field of the schema/],
    [{ dedupe: { key: 'id', within: '1h' } }, /streams\.clicks\.transform\.dedupe\.key: "id" is neither a field of the schema nor a derived column/],
    [{ required: ['cents'], derive: { cents: 'amount * 100' } }, /transform\.required: "cents" is a derived column; derived columns are computed after the other rules/],
    // operations that do not fit the type
    [{ standardize: { amount: 'lower' } }, /streams\.clicks\.transform\.standardize\.amount: lower applies to strings, and amount is double/],
    [{ standardize: { ts: 'trim' } }, /standardize\.ts: trim applies to strings, and ts is timestamp/],
    [{ standardize: { local_time: ['utc', 'lower'] } }, /standardize\.local_time: lower applies to strings, and local_time is timestamp after utc/],
    [{ standardize: { qty: 'utc' } }, /standardize\.qty: utc applies to timestamps and to strings holding them, and qty is int/],
    [{ map: { amount: { '1': 'x' } } }, /streams\.clicks\.transform\.map\.amount: only string fields can be mapped, and amount is double/],
    [{ standardize: { local_time: 'utc' }, map: { local_time: { a: 'b' } } }, /map\.local_time: only string fields can be mapped, and local_time is timestamp/],
    // defaults that do not fit the type
    [{ defaults: { amount: 'lots' } }, /streams\.clicks\.transform\.defaults\.amount: "lots" is not a number, and amount is double/],
    [{ defaults: { qty: 1.5 } }, /defaults\.qty: 1\.5 is not a 32-bit integer, and qty is int/],
    [{ defaults: { qty: 2 ** 31 } }, /defaults\.qty: 2147483648 is not a 32-bit integer/],
    [{ defaults: { page: 7 } }, /defaults\.page: 7 is not a string, and page is string/],
    [{ defaults: { ts: 'yesterday' } }, /defaults\.ts: "yesterday" is not an ISO-8601 timestamp, and ts is timestamp/],
    [{ defaults: { page: null } }, /defaults\.page: a default cannot be null/],
    // derived column names
    [{ derive: { page: "'x'" } }, /streams\.clicks\.transform\.derive\.page: clashes with the field "page" of the schema/],
    [{ derive: { Page: "'x'" } }, /derive\.Page: clashes with the field "page" of the schema/],
    [{ derive: { __x: '1' } }, /derive\.__x: names starting with __ are kept for Strata's own columns/],
    [{ derive: { 'a-b': '1' } }, /derive\.a-b: a derived column name must start with a letter/],
    [{ derive: { total: '1', TOTAL: '2' } }, /derive\.TOTAL: another derived column has this name/],
    // dedupe
    [{ dedupe: { key: 'event_id', within: 'a day' } }, /streams\.clicks\.transform\.dedupe\.within: expected a duration such as/],
    [{ dedupe: { key: 'event_id', within: '0h' } }, /dedupe\.within: the window must be longer than zero/],
    [{ dedupe: { key: ['event_id', 'event_id'], within: '1h' } }, /dedupe\.key: names a column twice/],
  ])('refuses %j naming the stream, the rule and the problem', (transform, message) => {
    expect(() => parseConfig(withTransform(transform))).toThrow(ConfigError);
    expect(() => parseConfig(withTransform(transform))).toThrow(message);
  });

  it('refuses a json dedupe key, and dedupe on a stream without event time', () => {
    const schema = { ...CLICKS_SCHEMA, payload: 'json?' };
    expect(() => parseConfig(withTransform({ dedupe: { key: 'payload', within: '1h' } }, schema))).toThrow(
      /dedupe\.key: "payload" is json; a dedupe key must be a scalar/,
    );
    const input = withTransform({ dedupe: { key: 'event_id', within: '1h' } });
    delete input.streams!.clicks!.eventTime;
    expect(() => parseConfig(input)).toThrow(/streams\.clicks\.transform\.dedupe: the stream declares no eventTime/);
  });

  it('accepts defaults fitting each type, a big integer as a decimal string, and a JSON value for json', () => {
    const schema = { ...CLICKS_SCHEMA, big: 'bigint?', flag: 'boolean?', day: 'date?', payload: 'json?' };
    const config = parseConfig(
      withTransform(
        { defaults: { big: '9223372036854775807', flag: false, day: '2026-03-01', payload: { a: [1] }, ts: '2026-03-01T10:00:00+02:00', amount: 0 } },
        schema,
      ),
    );
    expect(config.streams.get('clicks')!.transform!.defaults.size).toBe(6);
  });

  it('lists every problem of the block at once', () => {
    expect(() => parseConfig(withTransform({ required: ['usr'], standardize: { amount: 'trim' } }))).toThrow(
      /required: "usr" is not a field.*; .*standardize\.amount: trim applies to strings/,
    );
  });
});
