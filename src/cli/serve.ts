import type { FastifyInstance } from 'fastify';
import type { ProjectConfig } from '../config/index.js';
import { createHttpServer } from '../http/index.js';
import { PgServer, securityAuthenticator } from '../pgwire/index.js';
import { Strata } from '../strata.js';
import { printAccess } from './access.js';

export interface Serving {
  readonly strata: Strata;
  readonly app: FastifyInstance;
  readonly address: string;
  /** The PostgreSQL protocol listener; null with `--pg-port 0`. */
  readonly pg: PgServer | null;
}

/** The PostgreSQL protocol's port unless `--pg-port` says otherwise (PostgreSQL's own 5432 is left free). */
export const DEFAULT_PG_PORT = 5433;

/**
 * Opens Strata over `dataDir`, listens (HTTP, and the PostgreSQL protocol on `pgPort` unless it is 0, on the
 * same host), prints where, and stops cleanly on SIGINT or SIGTERM (a kill -9 is safe too: recovery handles
 * it). `beforeStop` runs first, for work that feeds the server (the demo traffic).
 */
export async function serve(
  config: ProjectConfig,
  options: {
    data: string;
    port: number;
    host: string;
    pgPort: number;
    tls?: { cert: Buffer; key: Buffer } | undefined;
    /** The master key of encryption at rest (see loadMasterKey); null: none. */
    masterKey: Buffer | null;
  },
  beforeStop: () => void = () => {},
): Promise<Serving> {
  const strata = await Strata.open({ config, dataDir: options.data, log: (message) => console.error(message), masterKey: options.masterKey });
  const app = createHttpServer(strata, { logger: true, ...(options.tls ? { tls: options.tls } : {}) });
  let address: string;
  let pg: PgServer | null = null;
  try {
    address = await app.listen({ port: options.port, host: options.host });
    if (options.pgPort !== 0) {
      const log = (message: string) => console.error(message);
      // Logins are API tokens (name and token), checked against their SCRAM verifiers; TLS with HTTP's certificate.
      pg = await PgServer.listen({
        engine: strata.sql,
        host: options.host,
        port: options.pgPort,
        authenticator: securityAuthenticator(strata.security, log),
        tls: options.tls,
        log,
      });
    }
  } catch (error) {
    await app.close();
    await strata.close();
    throw error;
  }
  console.log(`Strata is listening on ${address} (data in ${strata.dataDir})`);
  await printAccess(strata, address);
  if (pg) {
    console.log(
      `Strata speaks the PostgreSQL protocol on postgresql://${formatHost(pg.address.host)}:${pg.address.port}` +
        ` (user: a token's name, password: the token${pg.tls ? '; TLS' : ''})`,
    );
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`${signal}: stopping`);
    beforeStop();
    await pg?.close();
    await app.close();
    await strata.close();
    process.exit(0);
  };
  process.on('SIGINT', (signal) => void stop(signal));
  process.on('SIGTERM', (signal) => void stop(signal));
  return { strata, app, address, pg };
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
