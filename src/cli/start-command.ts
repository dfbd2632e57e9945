import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { loadConfig } from '../config/index.js';
import { loadMasterKey } from '../security/index.js';
import { parsePort } from './arguments.js';
import { readTls } from './access.js';
import { DEFAULT_PG_PORT, serve } from './serve.js';

/** The config file used when `--config` is not given: the first of these in the working directory. */
export const DEFAULT_CONFIG_FILES = ['strata.config.ts', 'strata.config.json'];

/** Resolves `--config`, or finds the default config file in the working directory. */
export function findConfigFile(given: string | undefined): string {
  if (given !== undefined) return given;
  const found = DEFAULT_CONFIG_FILES.find((name) => existsSync(name));
  if (!found) throw new Error(`no config: pass --config FILE, or create ${DEFAULT_CONFIG_FILES.join(' or ')} here`);
  return found;
}

export function startCommand(): Command {
  return new Command('start')
    .description('start Strata: the stream log, the HTTP API and the PostgreSQL protocol endpoint')
    .option('-c, --config <file>', 'project config (strata.config.ts or .json); default: the one in this folder')
    .option('-d, --data <dir>', 'data directory', './data')
    .option('-p, --port <n>', 'HTTP port (0 picks a free one)', parsePort, 7070)
    .option('--pg-port <n>', 'PostgreSQL protocol port (0 turns it off)', parsePort, DEFAULT_PG_PORT)
    .option('--host <address>', 'address to listen on (HTTP and PostgreSQL)', '127.0.0.1')
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (with --tls-key; or `tls` in the config)')
    .option('--tls-key <file>', "the certificate's PEM private key")
    .option(
      '--key-file <file>',
      'encryption at rest: the master key file (base64 of 32 bytes, or 32 raw bytes; mode 0600, outside the data dir); ' +
        'default: STRATA_MASTER_KEY, else unencrypted',
    )
    .addHelpText(
      'after',
      '\nExample:\n  strata start --config examples/clickstream/strata.config.json --data ./data --port 7070 --pg-port 5433\n' +
        '  PGPASSWORD=$STRATA_ADMIN_TOKEN psql "host=127.0.0.1 port=5433 user=admin" -c "SELECT count(*) FROM clicks"   # user: a token\'s name, password: the token\n' +
        '  strata start --tls-cert cert.pem --tls-key key.pem   # HTTPS (HTTP/2 and HTTP/1.1)\n' +
        '  STRATA_ADMIN_TOKEN=$(openssl rand -base64 32) strata start   # the admin token from the environment\n' +
        '  (umask 077; openssl rand -base64 32 > /etc/strata/master.key)   # a key file only its owner may read\n' +
        '  strata start --key-file /etc/strata/master.key   # encryption at rest (or STRATA_MASTER_KEY=...)',
    )
    .action(
      async (options: { config?: string; data: string; port: number; pgPort: number; host: string; tlsCert?: string; tlsKey?: string; keyFile?: string }) => {
        const configPath = findConfigFile(options.config);
        const config = await loadConfig(configPath);
        const masterKey = await loadMasterKey({ keyFile: options.keyFile, dataDir: options.data });
        await serve(config, { ...options, tls: await readTls(options, config.tls, configPath), masterKey });
      },
    );
}
