/** Strata's library surface: config typing, and the pieces an embedding program composes. */
export { defineConfig, loadConfig, parseConfig, type ConfigInput, type ProjectConfig, type StreamConfig } from './config/index.js';
export { Strata, type StrataOptions } from './strata.js';
export { createHttpServer } from './http/index.js';
export * from './errors.js';
