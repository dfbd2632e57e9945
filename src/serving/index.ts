/**
 * The serving layer: a view's rows from one consistent snapshot of the batch and speed layers, filtered,
 * ordered and limited (`GET /v1/views/{view}`).
 */
export {
  DEFAULT_LIMIT,
  MAX_LIMIT,
  parseViewRequest,
  serveView,
  VIEW_LAYERS,
  type FilterOp,
  type ViewAnswer,
  type ViewFilter,
  type ViewLayer,
  type ViewRequest,
} from './serve-view.js';
