import type { ProjectConfig } from '../config/index.js';
import { AUDIT_TABLE } from './audit.js';
import type { Resource } from './policies.js';

/**
 * The resource a SQL table stands for, so that a policy names what a user thinks of, not each physical table:
 *
 * - `<view>`, `<view>__batch`, `<view>__speed` → `view:<view>` (one view, in its merged, batch and speed layers);
 * - `<stream>`, `<stream>__clean`, `<stream>__quarantine` → `table:<stream>` (a stream's records, raw, cleaned or
 *   refused by its rules: the same data);
 * - `strata_audit` → `system:strata_audit` (admin tokens only);
 * - any other table (an imported one) → `table:<name>`.
 */
export function tableResource(config: ProjectConfig, table: string): Resource {
  if (table === AUDIT_TABLE) return `system:${AUDIT_TABLE}`;
  if (config.views.has(table)) return `view:${table}`;
  for (const suffix of ['__batch', '__speed']) {
    if (table.endsWith(suffix) && config.views.has(table.slice(0, -suffix.length))) return `view:${table.slice(0, -suffix.length)}`;
  }
  for (const suffix of ['__clean', '__quarantine']) {
    if (table.endsWith(suffix) && config.streams.has(table.slice(0, -suffix.length))) return `table:${table.slice(0, -suffix.length)}`;
  }
  return `table:${table}`;
}
