/** The HTTP edge: the API over a running Strata. Nothing below this folder imports from it. */
export { createHttpServer, type HttpServerOptions } from './server.js';
