import type { Catalog } from '../catalog/index.js';
import type { ObjectStore } from './types.js';

/** The folders of the lake whose every file must be registered in the catalog. */
export const MANAGED_PREFIXES = ['raw/', 'imported/', 'views/', 'clean/', 'quarantine/'];

/**
 * Makes the lake hold exactly what the catalog lists (architecture §2): a crash between publishing a file and
 * registering it leaves an orphan, which is removed here, so engines reading the folders directly see only
 * registered chunks. Staging files are cleared too. Answers the keys removed.
 */
export async function recoverLake(store: ObjectStore, catalog: Catalog): Promise<string[]> {
  await store.clearStaging();
  const registered = await catalog.objectKeys();
  const removed: string[] = [];
  for (const prefix of MANAGED_PREFIXES) {
    for (const key of await store.list(prefix)) {
      if (!registered.has(key)) {
        await store.delete(key);
        removed.push(key);
      }
    }
  }
  return removed;
}
