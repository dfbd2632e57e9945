import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { clicksConfig, removeDir, tempDir } from '../fixtures/strata.js';

const stream = (patch: Record<string, unknown>) => ({
  streams: { clicks: { ...clicksConfig().streams!.clicks, ...patch } },
});

describe('config validation', () => {
  it('accepts the example shape and fills defaults', () => {
    const config = parseConfig(clicksConfig());
    const clicks = config.streams.get('clicks')!;
    expect(clicks.shards).toBe(4);
    expect(clicks.fields.find((f) => f.name === 'amount')).toEqual({ name: 'amount', type: 'double', nullable: true });
    expect(config.ingest.maxBodyBytes).toBe(5 * 1024 * 1024);
    expect(config.ingest.maxRecordsPerRequest).toBe(10_000);
  });

  it.each([
    [stream({ schema: { event_id: 'strng', ts: 'timestamp' } }), /streams\.clicks\.schema\.event_id: unknown type "strng"/],
    [stream({ partitionKey: 'userid' }), /streams\.clicks\.partitionKey: "userid" is not a field/],
    [stream({ eventTime: 'page' }), /streams\.clicks\.eventTime: "page" is string; event time must be a timestamp/],
    [stream({ shards: 0 }), /streams\.clicks\.shards/],
    [stream({ shard: 4 }), /streams\.clicks: unknown key\(s\) "shard"/],
    [{ ...clicksConfig(), stream: {} }, /\(top level\): unknown key\(s\) "stream"/],
    [{ streams: { 'bad name': clicksConfig().streams!.clicks } }, /streams\.bad name: a stream name must start/],
    [stream({ schema: { 'a-b': 'string' } }), /streams\.clicks\.schema\.a-b: a field name must start/],
    [{ streams: {} }, /declare at least one stream/],
    [{ ...clicksConfig(), dashboards: { d: { panels: [{ view: 'nope', chart: 'line', x: 'a', y: 'b' }] } } }, /dashboards\.d\.panels\.0\.view: "nope" is not a view of the config/],
    [{ ...clicksConfig(), views: { v: 'SELECT count(*) AS n FROM clicks' }, dashboards: { d: { panels: [{ view: 'v', chart: 'pie', y: 'n' }] } } }, /dashboards\.d\.panels\.0\.chart/],
    [{ ...clicksConfig(), views: { v: 'SELECT count(*) AS n FROM clicks' }, dashboards: { d: { panels: [{ view: 'v', chart: 'line', y: 'n' }] } } }, /dashboards\.d\.panels\.0\.x: a line chart needs x/],
    [{ ...clicksConfig(), views: { clicks: 'SELECT count(*) AS n FROM clicks' } }, /views\.clicks: a view cannot have the name of a stream/],
    [{ ...clicksConfig(), views: { v: { sql: 'SELECT count(*) AS n FROM clicks', every: 'soon' } } }, /views\.v\.every: expected a duration/],
    [{ ...clicksConfig(), delivery: { maxSecs: 1 } }, /delivery: unknown key\(s\) "maxSecs"/],
  ])('refuses %j naming the stream and field', (input, message) => {
    expect(() => parseConfig(input)).toThrow(ConfigError);
    expect(() => parseConfig(input)).toThrow(message);
  });
});

describe('config files', () => {
  let dir: string;
  afterEach(async () => removeDir(dir));

  it('loads strata.config.ts through defineConfig', async () => {
    dir = await tempDir();
    const path = join(dir, 'strata.config.ts');
    const defineConfig = join(process.cwd(), 'src/config/index.ts');
    await writeFile(
      path,
      `import { defineConfig } from ${JSON.stringify(defineConfig)};\n` +
        `const shards: number = 2;\n` +
        `export default defineConfig({ streams: { orders: { shards, schema: { id: 'string', total: 'double' } } } });\n`,
    );
    const config = await loadConfig(path);
    expect(config.streams.get('orders')!.shards).toBe(2);
  });

  it('names the file when its JSON is malformed', async () => {
    dir = await tempDir();
    const path = join(dir, 'strata.config.json');
    await writeFile(path, '{ "streams": { ');
    await expect(loadConfig(path)).rejects.toThrow(/strata\.config\.json is not valid JSON/);
  });
});
