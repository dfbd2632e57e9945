import type { FieldSpec, ProjectConfig } from '../config/index.js';
import { compileView, type ViewDefinition } from './compile-view.js';
import { SqlParser } from './sql-parser.js';

/**
 * Compiles every view of a config against the streams' columns, in declaration order. The first view that
 * cannot be decomposed throws {@link UnsupportedViewError} naming the view and the construct, so an
 * unsupported view stops Strata before it starts (`Strata.open` calls this first).
 */
export async function compileViews(config: ProjectConfig): Promise<Map<string, ViewDefinition>> {
  const views = new Map<string, ViewDefinition>();
  if (config.views.size === 0) return views;
  const sources = new Map<string, readonly FieldSpec[]>([...config.streams.values()].map((stream) => [stream.name, stream.fields]));
  const parser = await SqlParser.open();
  try {
    const aggregates = await parser.aggregateNames();
    for (const view of config.views.values()) {
      views.set(view.name, await compileView(view.name, view.sql, sources, parser, aggregates));
    }
  } finally {
    await parser.close();
  }
  return views;
}
