/**
 * The speed layer: the views' partial plan applied to the log past the current batch version's W, in
 * micro-batches, keyed by offset range so that a newer version drops exactly what it covers.
 */
export { RANGE_COLUMNS, SPEED_CONSUMER, SpeedLayer, type SpeedLayerOptions, type SpeedViewStatus, type ViewSnapshot } from './speed-layer.js';
