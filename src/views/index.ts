/**
 * Views written once: a view's SQL is read into a definition, from which Strata derives one partial plan (run
 * by the batch layer over chunks and by the speed layer over micro-batches) and one merge (run by serving).
 */
export { compileView, emptySourceSql, UnsupportedViewError, type MeasureKind, type ViewDefinition, type ViewKey, type ViewMeasure } from './compile-view.js';
export {
  DDSKETCH_ALPHA,
  HLL_REGISTERS,
  mergeSql,
  foldPartialSql,
  scalarPartialSql,
  sketchMeasures,
  sketchPartialSql,
  type PartialRelations,
} from './plan.js';
export { SqlParser, type AstNode } from './sql-parser.js';
export { compileViews } from './compile-views.js';
