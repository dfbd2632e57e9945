/** The lake layer's public surface: the {@link ObjectStore} interface, its local backend, chunk writing and delivery. */
export type { ObjectStore } from './types.js';
export { LocalObjectStore } from './local/local-object-store.js';
export { MANAGED_PREFIXES, recoverLake } from './recovery.js';
