/**
 * The delivery thread: runs {@link Delivery} in a worker of its own, so that sealing chunks (reading the log,
 * staging NDJSON, waiting on DuckDB) never stalls the thread that acknowledges producers. It reads the embedded
 * log read-only, learns each shard's durable seq from shared memory, writes Parquet with its own DuckDB, and
 * registers chunks through its own connection to the catalog. Retention checkpoints go back to the main thread,
 * which owns the log.
 */
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteCatalog } from '../catalog/index.js';
import type { ProjectConfig } from '../config/index.js';
import { SqliteKeyring } from '../security/data-keys.js';
import { asSeq, segmentKeys, type RecordBatch, type Seq } from '../stream/index.js';
import { ShardReader } from '../stream/embedded/shard-reader.js';
import { ChunkWriter } from './chunk-writer.js';
import { Delivery, type DeliverySource } from './delivery.js';
import { LocalObjectStore } from './local/local-object-store.js';
import { durableSlots, type DeliveryWorkerData, type FromDeliveryWorker, type ToDeliveryWorker } from './delivery-thread.js';

const data = workerData as DeliveryWorkerData;
const port = parentPort!;
const post = (message: FromDeliveryWorker) => port.postMessage(message);

const config: ProjectConfig = data.config;
const durable = new BigInt64Array(data.durable);
const notify = new Int32Array(data.notify);
const slots = durableSlots(config);

/**
 * The data keys of encryption at rest, in this thread's own connection to `keyring.db` (null when the data
 * directory is plain): the log's segments are read with it, and what this thread writes is encrypted with it.
 */
const keyring: SqliteKeyring | null = data.masterKey === null ? null : SqliteKeyring.open(data.dataDir, Buffer.from(data.masterKey));
// The keyring keeps its own copy of the master key.
data.masterKey?.fill(0);

const durableSeq = (stream: string, shard: number): number => Number(Atomics.load(durable, slots.get(`${stream}/${shard}`)!));

const readers = new Map<string, ShardReader>();
const source: DeliverySource = {
  async readBatch(stream, shard, fromSeq, limit): Promise<RecordBatch> {
    const key = `${stream}/${shard}`;
    let reader = readers.get(key);
    if (!reader) {
      reader = new ShardReader(join(data.dataDir, 'stream', stream, String(shard)), segmentKeys(keyring, stream, shard));
      readers.set(key, reader);
    }
    return reader.readBatch(fromSeq, limit, durableSeq(stream, shard));
  },
  async waitForAppend(stream, shard, afterSeq, timeoutMs): Promise<Seq> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const generation = Atomics.load(notify, 0);
      const current = durableSeq(stream, shard);
      const remaining = deadline - Date.now();
      if (current > afterSeq || remaining <= 0) return asSeq(current);
      const waited = Atomics.waitAsync(notify, 0, generation, remaining);
      if (waited.async) await waited.value;
    }
  },
  async commitCheckpoint(_consumer, stream, shard, seq) {
    post({ type: 'checkpoint', stream, shard, seq });
  },
};

const catalog = new SqliteCatalog(join(data.dataDir, 'catalog.db'));
const store = new LocalObjectStore(join(data.dataDir, 'lake'));
await store.init();
const writer = await ChunkWriter.open(store, { keyring });
const delivery = new Delivery({
  stream: source,
  catalog,
  store,
  writer,
  config,
  log: (message) => post({ type: 'log', message }),
  onDelivered: (stream, shard, seq) => post({ type: 'delivered', stream, shard, seq }),
});
await delivery.start();
post({ type: 'ready', delivered: delivery.status().map((s) => [s.stream, s.shard, s.deliveredSeq]) });

port.on('message', (message: ToDeliveryWorker) => {
  if (message.type !== 'stop') return;
  void (async () => {
    await delivery.stop();
    await writer.close();
    await catalog.close();
    await keyring?.close();
    post({ type: 'stopped' });
    port.close();
  })();
});
