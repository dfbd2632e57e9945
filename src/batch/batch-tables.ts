import type { Catalog } from '../catalog/index.js';
import type { RecordSource } from '../transform/index.js';
import type { ObjectStore } from '../lake/index.js';
import type { Keyring } from '../security/keyring.js';
import type { DerivedTable } from '../sql/index.js';
import type { ViewDefinition } from '../views/index.js';
import { batchTableSql } from './partials.js';

/** The SQL table name of a view's batch layer. */
export const batchTableName = (view: string): string => `${view}__batch`;

/**
 * The `<view>__batch` tables for the SQL engine: per view, the merge over its current version's partial files.
 * Their state is the current version number, so the engine rebuilds a table exactly when a run flips it.
 * With a keyring, encrypted partial files are read with their keys (the SQL engine registers the keys named).
 */
export function batchTables(
  catalog: Catalog,
  store: ObjectStore,
  sources: ReadonlyMap<string, RecordSource>,
  views: ReadonlyMap<string, ViewDefinition>,
  keyring: Keyring | null = null,
): () => Promise<DerivedTable[]> {
  return async () => {
    if (views.size === 0) return [];
    const current = await catalog.currentViewVersions();
    return [...views.values()].map((view) => {
      const version = current.get(view.name) ?? null;
      return {
        name: batchTableName(view.name),
        state: String(version ?? 'none'),
        sql: async () => {
          const emptySource = sources.get(view.source)!.emptySql;
          if (version === null) return batchTableSql(view, emptySource, [], store, keyring);
          const info = (await catalog.viewVersions(view.name)).find((v) => v.version === version);
          // The version was replaced between the two reads: the next query sees the new state and rebuilds.
          return batchTableSql(view, emptySource, info?.files ?? [], store, keyring);
        },
      };
    });
  };
}
