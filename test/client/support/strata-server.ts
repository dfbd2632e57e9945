import type { ConfigInput } from '../../../src/config/index.js';
import type { Strata } from '../../../src/strata.js';
import { removeDir, startInProcess, tempDir } from '../../fixtures/strata.js';

/** The clickstream stream the client and CLI tests write to: three shards, one nullable double to get wrong. */
export const CLICKS_CONFIG: ConfigInput = {
  streams: {
    clicks: {
      partitionKey: 'user_id',
      eventTime: 'ts',
      shards: 3,
      schema: { event_id: 'string', ts: 'timestamp', user_id: 'string', page: 'string', amount: 'double?' },
    },
  },
};

/** A real Strata with its HTTP API on 127.0.0.1 and a free port, over a temporary data directory. */
export interface TestServer {
  readonly url: string;
  readonly strata: Strata;
  /** Sum of lastSeq over the stream's shards, as GET /v1/streams reports it: the records in the log. */
  recordsInLog(stream: string): Promise<number>;
  close(): Promise<void>;
}

/** Starts Strata the way `strata start` does; the caller closes it. */
export async function startStrata(config: ConfigInput = CLICKS_CONFIG): Promise<TestServer> {
  const dataDir = await tempDir('strata-client-');
  const running = await startInProcess(config, dataDir).catch(async (error: unknown) => {
    await removeDir(dataDir);
    throw error;
  });
  return {
    url: running.url,
    strata: running.strata,
    async recordsInLog(stream) {
      const response = await fetch(`${running.url}/v1/streams`);
      const body = (await response.json()) as { streams: { name: string; shards: { lastSeq: string }[] }[] };
      const found = body.streams.find((s) => s.name === stream);
      if (!found) throw new Error(`no stream ${stream} in GET /v1/streams`);
      return found.shards.reduce((sum, shard) => sum + Number(shard.lastSeq), 0);
    },
    async close() {
      await running.close();
      await removeDir(dataDir);
    },
  };
}

/** A valid clicks record; `n` makes event_id and user_id distinct. */
export function click(n: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    event_id: `e${n}`,
    ts: new Date(Date.UTC(2024, 0, 1, 0, 0, n % 60)).toISOString(),
    user_id: `u${n % 17}`,
    page: `/p/${n % 5}`,
    amount: n % 3 === 0 ? null : n / 10,
    ...extra,
  };
}
