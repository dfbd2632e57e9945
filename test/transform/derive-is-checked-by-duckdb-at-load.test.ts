import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { compileTransform, compileTransforms } from '../../src/transform/index.js';
import { clicksStream, clicksWith, CLICKS_SCHEMA } from './support.js';

const compileDerive = (derive: Record<string, string>) => compileTransform(clicksStream({ derive }));

describe('a derive expression is read and bound by DuckDB when the transform compiles', () => {
  it.each([
    [{ cents: 'amount *' }, /streams\.clicks\.transform\.derive\.cents: cannot parse the expression/],
    [{ cents: 'amout * 100' }, /streams\.clicks\.transform\.derive\.cents: .*"amout" not found.*amount/],
    [{ cents: 'dollars * 100', dollars: 'amount' }, /derive\.cents: .*"dollars" not found/],
    [{ cents: "amount + 'lots'" }, /derive\.cents: .*lots/],
    [{ cents: 'no_such_function(amount)' }, /derive\.cents: .*no_such_function/],
    [{ total: 'sum(amount)' }, /derive\.total: sum\(\) is an aggregate; a derived column is computed from its record alone/],
    [{ rank: 'row_number() OVER (ORDER BY ts)' }, /derive\.rank: the window function row_number\(\) is not allowed/],
    [{ n: '(SELECT 1)' }, /derive\.n: a subquery is not allowed/],
    [{ r: 'random() < 0.5' }, /derive\.r: random gives a different value in each run/],
    [{ age: 'now() - ts' }, /derive\.age: now gives a different value in each run/],
    [{ age: 'current_timestamp - ts' }, /derive\.age: current_timestamp gives a different value in each run/],
    [{ two: 'amount) AS a, (amount' }, /derive\.two: expected one SQL scalar expression/],
    [{ cut: 'amount -- the rest is gone' }, /derive\.cut: (expected one SQL scalar expression|cannot parse)/],
    [{ offset: '__seq + 1' }, /derive\.offset: .*"__seq" not found/],
    [{ why: '__quarantine_reason' }, /derive\.why: .*"__quarantine_reason" not found/],
  ])('refuses %j naming the stream and the derived column', async (derive, message) => {
    const compiled = compileDerive(derive);
    await expect(compiled).rejects.toThrow(ConfigError);
    await expect(compileDerive(derive)).rejects.toThrow(message);
  });

  it('accepts a column named like a changing function: it binds as the column', async () => {
    const plan = await compileTransform(clicksStream({ derive: { later: "today + INTERVAL '1 day'" } }, { ...CLICKS_SCHEMA, today: 'date?' }));
    expect(plan!.columns.at(-1)).toMatchObject({ name: 'later', sqlType: 'TIMESTAMP' });
  });

  it('uses the clean types: a string parsed by utc is a timestamp to derive', async () => {
    const plan = await compileTransform(clicksStream({ standardize: { local_time: 'utc' }, derive: { local_day: 'CAST(local_time AS DATE)' } }));
    expect(plan!.columns.at(-1)).toMatchObject({ name: 'local_day', sqlType: 'DATE' });
    await expect(compileTransform(clicksStream({ derive: { local_day: 'local_time + INTERVAL 1 DAY' } }))).rejects.toThrow(/derive\.local_day/);
  });

  it('refuses a timestamp default that is no calendar date, naming it', async () => {
    const stream = clicksStream({ defaults: { ts: '2026-02-30T00:00:00Z' } });
    await expect(compileTransform(stream)).rejects.toThrow(/streams\.clicks\.transform\.defaults\.ts: "2026-02-30T00:00:00Z" is not a valid timestamp/);
  });

  it('compiles every stream of a config, and only those that declare rules', async () => {
    const input = clicksWith({ derive: { cents: 'amount * 100' } });
    input.streams!.orders = { schema: { id: 'string', total: 'double' } };
    const plans = await compileTransforms(parseConfig(input));
    expect([...plans.keys()]).toEqual(['clicks']);
    expect(await compileTransform(parseConfig(input).streams.get('orders')!)).toBeNull();
    expect(await compileTransform(clicksStream({}))).toBeNull();

    input.streams!.orders = { schema: { id: 'string', total: 'double' }, transform: { derive: { cents: 'totl * 100' } } };
    await expect(compileTransforms(parseConfig(input))).rejects.toThrow(/streams\.orders\.transform\.derive\.cents: .*"totl"/);
  });
});
