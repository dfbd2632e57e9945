import type { FastifyInstance } from 'fastify';
import type { ProjectConfig } from '../config/index.js';
import { createHttpServer } from '../http/index.js';
import { Strata } from '../strata.js';

export interface Serving {
  readonly strata: Strata;
  readonly app: FastifyInstance;
  readonly address: string;
}

/**
 * Opens Strata over `dataDir`, listens, prints where, and stops cleanly on SIGINT or SIGTERM (a kill -9 is
 * safe too: recovery handles it). `beforeStop` runs first, for work that feeds the server (the demo traffic).
 */
export async function serve(
  config: ProjectConfig,
  options: { data: string; port: number; host: string },
  beforeStop: () => void = () => {},
): Promise<Serving> {
  const strata = await Strata.open({ config, dataDir: options.data, log: (message) => console.error(message) });
  const app = createHttpServer(strata, { logger: true });
  let address: string;
  try {
    address = await app.listen({ port: options.port, host: options.host });
  } catch (error) {
    await strata.close();
    throw error;
  }
  console.log(`Strata is listening on ${address} (data in ${strata.dataDir})`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`${signal}: stopping`);
    beforeStop();
    await app.close();
    await strata.close();
    process.exit(0);
  };
  process.on('SIGINT', (signal) => void stop(signal));
  process.on('SIGTERM', (signal) => void stop(signal));
  return { strata, app, address };
}
