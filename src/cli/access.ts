import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { TlsConfig } from '../config/index.js';
import type { Strata } from '../strata.js';

/**
 * Says how to get in, once the server listens (as Jupyter does): on the first start of a data directory
 * without STRATA_ADMIN_TOKEN, the admin token is made and printed with the console's login URL, the only time
 * its text is ever known (only its hash is kept); later starts say where it came from instead.
 */
export async function printAccess(strata: Strata, address: string): Promise<void> {
  const admin = await strata.security.bootstrapAdmin();
  if (admin.kind === 'created') {
    console.log(`Admin token (shown this once; Strata keeps only its hash): ${admin.token}`);
    console.log(`Console: ${address}/?token=${admin.token}`);
    console.log(`CLI and API: export STRATA_TOKEN=${admin.token}  (or send Authorization: Bearer <token>)`);
  } else if (admin.kind === 'environment') {
    console.log(`Console: ${address}/ (log in with the token in STRATA_ADMIN_TOKEN)`);
  } else {
    console.log(`Console: ${address}/ (log in with an API token)`);
    console.log(
      'The admin token was printed when this data directory was first started; Strata keeps only its hash, so it cannot ' +
        'print it again. Lost it? Restart with STRATA_ADMIN_TOKEN set to a new random value (e.g. `openssl rand -base64 32`) ' +
        'and make tokens with `strata token create NAME --policy P`.',
    );
  }
}

/**
 * The certificate and key to serve HTTPS with: `--tls-cert`/`--tls-key`, else the config's `tls` (paths relative
 * to the config file); undefined for plain HTTP. Both or neither must be given.
 */
export async function readTls(
  flags: { tlsCert?: string; tlsKey?: string },
  config: TlsConfig | null,
  configPath: string | null,
): Promise<{ cert: Buffer; key: Buffer } | undefined> {
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) throw new Error('give both --tls-cert and --tls-key, or neither');
  const files =
    flags.tlsCert !== undefined && flags.tlsKey !== undefined
      ? { cert: resolve(flags.tlsCert), key: resolve(flags.tlsKey) }
      : config !== null
        ? { cert: resolve(dirname(configPath ?? '.'), config.cert), key: resolve(dirname(configPath ?? '.'), config.key) }
        : undefined;
  if (files === undefined) return undefined;
  const read = async (what: string, path: string) => {
    try {
      return await readFile(path);
    } catch (error) {
      throw new Error(`cannot read the TLS ${what} ${path}: ${(error as Error).message}`);
    }
  };
  return { cert: await read('certificate', files.cert), key: await read('key', files.key) };
}
