/** The demo: the example clickstream project and a traffic generator for it. */
export { startClickstream, type TrafficOptions } from './clickstream.js';
import { fileURLToPath } from 'node:url';

/** The example project the demo runs: `examples/clickstream/strata.config.json` in the package. */
export const DEMO_CONFIG_PATH = fileURLToPath(new URL('../../examples/clickstream/strata.config.json', import.meta.url));
