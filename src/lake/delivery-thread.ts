import { Worker } from 'node:worker_threads';
import type { ProjectConfig } from '../config/index.js';
import { asSeq, type Stream } from '../stream/index.js';
import { DELIVERY_CONSUMER } from './delivery.js';

/** What the main thread hands the delivery worker at start. */
export interface DeliveryWorkerData {
  readonly dataDir: string;
  readonly config: ProjectConfig;
  /** One BigInt64 per shard (in {@link durableSlots} order): the shard's durable seq, written by the log. */
  readonly durable: SharedArrayBuffer;
  /** One Int32 bumped and notified after every durable write, so the worker can sleep until there is more. */
  readonly notify: SharedArrayBuffer;
  /** The master key of an encrypted data directory (the worker opens the keyring with it); null when plain. */
  readonly masterKey: Uint8Array | null;
}

export type ToDeliveryWorker = { type: 'stop' };

export type FromDeliveryWorker =
  | { type: 'ready'; delivered: [string, number, number][] }
  | { type: 'delivered'; stream: string; shard: number; seq: number }
  | { type: 'checkpoint'; stream: string; shard: number; seq: number }
  | { type: 'log'; message: string }
  | { type: 'stopped' };

/** The slot of each `stream/shard` in the shared durable-seq array: streams in config order, then shards. */
export function durableSlots(config: ProjectConfig): Map<string, number> {
  const slots = new Map<string, number>();
  for (const stream of config.streams.values()) {
    for (let shard = 0; shard < stream.shards; shard++) slots.set(`${stream.name}/${shard}`, slots.size);
  }
  return slots;
}

/**
 * The main thread's handle on the delivery worker (see delivery-worker.ts): starts it, feeds it each shard's
 * durable seq through shared memory, applies the retention checkpoints it sends, and keeps the delivered seq
 * of every shard for status answers.
 */
export class DeliveryThread {
  private readonly slots: Map<string, number>;
  private readonly durable: BigInt64Array;
  private readonly notify: Int32Array;
  private readonly delivered = new Map<string, number>();
  private worker: Worker | null = null;
  private stopped: Promise<void> | null = null;
  /** The worker's last failure, when it died: delivery has stopped and a restart is needed. */
  failure: Error | null = null;
  /** Told after each chunk is registered in the catalog: its stream, shard, last seq and record count. */
  onDelivered: ((stream: string, shard: number, seq: number, records: number) => void) | null = null;

  constructor(
    private readonly dataDir: string,
    private readonly config: ProjectConfig,
    private readonly stream: Stream,
    private readonly log: (message: string) => void = () => {},
    /** The master key when the data directory is encrypted: the worker opens `keyring.db` with it. */
    private readonly masterKey: Buffer | null = null,
  ) {
    this.slots = durableSlots(config);
    this.durable = new BigInt64Array(new SharedArrayBuffer(8 * Math.max(1, this.slots.size)));
    this.notify = new Int32Array(new SharedArrayBuffer(4));
    for (const stream of config.streams.values()) {
      for (const shard of this.stream.shards(stream.name)) this.noteDurable(stream.name, shard.shard, shard.lastSeq);
    }
  }

  /** Called by the log after each group commit: the worker may read up to `seq` now. */
  noteDurable(stream: string, shard: number, seq: number): void {
    const slot = this.slots.get(`${stream}/${shard}`);
    if (slot === undefined) return;
    Atomics.store(this.durable, slot, BigInt(seq));
    Atomics.add(this.notify, 0, 1);
    Atomics.notify(this.notify, 0);
  }

  /** Starts the worker and resolves once it has read where each shard's delivery stands. */
  async start(): Promise<void> {
    // Under the test runner this module is TypeScript source, and so is its worker: load it through tsx.
    const typescript = import.meta.url.endsWith('.ts');
    const url = new URL(`./delivery-worker.${typescript ? 'ts' : 'js'}`, import.meta.url);
    const data: DeliveryWorkerData = {
      dataDir: this.dataDir,
      config: this.config,
      durable: this.durable.buffer as SharedArrayBuffer,
      notify: this.notify.buffer as SharedArrayBuffer,
      // Copied into the worker (structured clone), never shared: the worker's copy is its own to wipe.
      masterKey: this.masterKey === null ? null : new Uint8Array(this.masterKey),
    };
    const worker = typescript
      ? new Worker(
          `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(url.href)}); })`,
          { eval: true, workerData: data },
        )
      : new Worker(url, { workerData: data });
    this.worker = worker;
    let stoppedResolve: () => void = () => {};
    this.stopped = new Promise<void>((resolve) => (stoppedResolve = resolve));
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (message: FromDeliveryWorker) => {
        switch (message.type) {
          case 'ready':
            for (const [stream, shard, seq] of message.delivered) this.delivered.set(`${stream}/${shard}`, seq);
            resolve();
            break;
          case 'delivered': {
            const before = this.delivered.get(`${message.stream}/${message.shard}`) ?? 0;
            this.delivered.set(`${message.stream}/${message.shard}`, message.seq);
            this.onDelivered?.(message.stream, message.shard, message.seq, message.seq - before);
            break;
          }
          case 'checkpoint':
            this.stream
              .commitCheckpoint(DELIVERY_CONSUMER, message.stream, message.shard, asSeq(message.seq))
              .catch((error: unknown) => this.log(`delivery checkpoint failed: ${(error as Error).message}`));
            break;
          case 'log':
            this.log(message.message);
            break;
          case 'stopped':
            break;
        }
      });
      worker.on('error', (error) => {
        this.failure = error;
        this.log(`delivery stopped after an error; restart Strata to resume it: ${error.stack ?? error.message}`);
        reject(error);
      });
      worker.on('exit', () => {
        this.worker = null;
        stoppedResolve();
      });
    });
  }

  /** The last seq of a shard registered in the catalog, 0 before any. */
  deliveredSeq(stream: string, shard: number): number {
    return this.delivered.get(`${stream}/${shard}`) ?? 0;
  }

  /** Stops the worker; records it had buffered but not sealed are delivered after the next start. */
  async stop(): Promise<void> {
    if (this.worker === null) return;
    this.worker.postMessage({ type: 'stop' } satisfies ToDeliveryWorker);
    const timer = setTimeout(() => void this.worker?.terminate(), 30_000);
    await this.stopped;
    clearTimeout(timer);
  }
}
