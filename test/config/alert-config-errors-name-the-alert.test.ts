import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig, type ConfigInput } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { Strata } from '../../src/strata.js';
import { clicksConfig, removeDir, tempDir } from '../fixtures/strata.js';

const PAGE_MINUTE = `SELECT page, time_bucket(INTERVAL '1 minute', ts) AS minute, count(*) AS views, max(page) AS last_page
  FROM clicks GROUP BY page, minute`;
/** Never called: these configs are refused before any evaluation. */
const WEBHOOK = 'http://127.0.0.1:9/hook';

/** The example stream and view with one alert `a`, patched. */
function withAlert(patch: Record<string, unknown>): ConfigInput {
  return clicksConfig({
    views: { page_minute: PAGE_MINUTE },
    alerts: { a: { view: 'page_minute', measure: 'views', below: 10, notify: { webhook: WEBHOOK }, ...patch } as never },
  });
}

describe('alert config', () => {
  it('accepts the API.md example and fills defaults', () => {
    const config = parseConfig(withAlert({ where: "page = '/checkout'", for: '2m' }));
    expect(config.alerts.get('a')).toEqual({
      name: 'a',
      view: 'page_minute',
      where: "page = '/checkout'",
      measure: 'views',
      condition: 'below',
      threshold: 10,
      forMs: 120_000,
      layer: 'merged',
      notify: { webhook: WEBHOOK, attempts: 5, timeoutMs: 5000, backoffMs: 1000 },
    });
    expect(parseConfig(clicksConfig()).alerts.size).toBe(0);
  });

  it.each([
    [{ view: 'nope' }, /alerts\.a\.view: "nope" is not a view of the config/],
    [{ above: 5 }, /alerts\.a: give one of below or above, not both/],
    [{ below: undefined }, /alerts\.a: give a threshold, below or above/],
    [{ for: 'soon' }, /alerts\.a\.for: expected a duration such as "300ms", "30s" or "2m", got "soon"/],
    [{ for: '8d' }, /alerts\.a\.for: 8d is out of range/],
    [{ notify: { webhook: 'ftp://127.0.0.1/hook' } }, /alerts\.a\.notify\.webhook: expected an http:\/\/ or https:\/\/ URL/],
    [{ notify: { webhook: 'not a url' } }, /alerts\.a\.notify\.webhook: expected an http:\/\/ or https:\/\/ URL/],
    [{ notify: { webhook: 'http://user:pw@127.0.0.1/hook' } }, /alerts\.a\.notify\.webhook: a webhook URL cannot carry a user name or password/],
    [{ notify: { webhook: WEBHOOK, attempts: 0 } }, /alerts\.a\.notify\.attempts/],
    [{ notify: { webhook: WEBHOOK, timeout: '1ms' } }, /alerts\.a\.notify\.timeout: 1ms is out of range/],
    [{ notify: { url: WEBHOOK } }, /alerts\.a\.notify: unknown key\(s\) "url"/],
    [{ layer: 'batch' }, /alerts\.a\.layer/],
    [{ threshold: 3 }, /alerts\.a: unknown key\(s\) "threshold"/],
    [{ where: '  ' }, /alerts\.a\.where: is an empty condition/],
  ])('refuses %j naming the alert', (patch, message) => {
    const input = withAlert(patch);
    expect(() => parseConfig(input)).toThrow(ConfigError);
    expect(() => parseConfig(input)).toThrow(message);
  });

  it('refuses an alert name that is no identifier', () => {
    const input = clicksConfig({
      views: { page_minute: PAGE_MINUTE },
      alerts: { 'checkout drop': { view: 'page_minute', measure: 'views', below: 1, notify: { webhook: WEBHOOK } } },
    });
    expect(() => parseConfig(input)).toThrow(/alerts\.checkout drop: an alert name must start/);
  });
});

describe('alert config checked against the views when Strata opens', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await removeDir(dir);
    dir = undefined;
  });

  const open = async (patch: Record<string, unknown>) => {
    dir = await tempDir();
    const strata = await Strata.open({ config: parseConfig(withAlert(patch)), dataDir: dir, deliver: false });
    await strata.close();
  };

  it.each([
    [{ measure: 'visits' }, /alerts\.a\.measure: "visits" is not a column of view "page_minute", not a measure \(measures: views, last_page\)/],
    [{ measure: 'page' }, /alerts\.a\.measure: "page" is a group-by column of view "page_minute", not a measure/],
    [{ measure: 'last_page' }, /alerts\.a\.measure: "last_page" is VARCHAR; an alert compares a number with its threshold/],
    [{ where: "user_id = 'u1'" }, /alerts\.a\.where: "user_id" is not a group-by column of view "page_minute"; a condition names the view's group-by columns only \(page, minute\)/],
    [{ where: 'views > 3' }, /alerts\.a\.where: "views" is a measure of view "page_minute"/],
    [{ where: "page = '/a') OR (1 = 1" }, /alerts\.a\.where: cannot parse/],
    [{ where: "page = '/a' GROUP BY page" }, /alerts\.a\.where: .* is not one SQL condition/],
    [{ where: "page = '/a'; DROP TABLE clicks" }, /alerts\.a\.where: .* is not one SQL condition/],
    [{ where: "minute = 'soon'" }, /alerts\.a\.where: Conversion Error/],
    [{ where: 'page IN (SELECT page FROM clicks)' }, /alerts\.a\.where: a subquery is not allowed/],
    [{ where: 'count(*) > 1' }, /alerts\.a\.where: the aggregate count_star\(\) is not allowed/],
    [{ where: 'minute > 5' }, /alerts\.a\.where: .*(Binder|Conversion|Could not|No function)/i],
  ])('refuses %j naming the alert', async (patch, message) => {
    const opened = open(patch);
    await expect(opened).rejects.toThrow(ConfigError);
    await expect(opened).rejects.toThrow(message);
  });

  it('opens with a condition on group-by columns, whatever their case, and frees the data directory on refusal', async () => {
    // Never holding (and so never calling its webhook): only the opening is under test.
    const quiet = { below: undefined, above: 1_000_000 };
    await open({ ...quiet, where: "Page IN ('/a', '/b') AND minute >= TIMESTAMP '2026-01-01'" });
    dir = await tempDir();
    const refused = Strata.open({ config: parseConfig(withAlert({ measure: 'visits' })), dataDir: dir, deliver: false });
    await expect(refused).rejects.toThrow(ConfigError);
    // Refused before anything was opened: the data directory can be opened again at once.
    const strata = await Strata.open({ config: parseConfig(withAlert(quiet)), dataDir: dir, deliver: false });
    expect(strata.alerts.status().map((alert) => alert.name)).toEqual(['a']);
    await strata.close();
  });
});
