/** The lake layer's public surface: the {@link ObjectStore} interface, its local backend, chunk writing and delivery. */
export type { ObjectStore } from './types.js';
export { LocalObjectStore } from './local/local-object-store.js';
export { MANAGED_PREFIXES, recoverLake } from './recovery.js';
export { ChunkWriter, readJsonColumns, readJsonText, UNKNOWN_PARTITION, type ChunkSpec } from './chunk-writer.js';
export { Delivery, DELIVERY_CONSUMER, OFFSET_COLUMNS, withOffsets, type DeliveryParts, type DeliverySource, type ShardDelivery } from './delivery.js';
export { parquetCopyOptions } from './parquet-format.js';
export { DeliveryThread } from './delivery-thread.js';
