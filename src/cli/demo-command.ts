import { Command } from 'commander';
import { loadConfig } from '../config/index.js';
import { DEMO_CONFIG_PATH, startClickstream } from '../demo/index.js';
import { loadMasterKey } from '../security/index.js';
import { parsePort, parsePositiveInt } from './arguments.js';
import { DEFAULT_PG_PORT, serve } from './serve.js';

export function demoCommand(): Command {
  return new Command('demo')
    .description('start Strata with the example clickstream project and built-in traffic (what `npm start` runs)')
    .option('-r, --rate <n>', 'demo events per second', parsePositiveInt, 500)
    .option('-d, --data <dir>', 'data directory', './data')
    .option('-p, --port <n>', 'HTTP port (0 picks a free one)', parsePort, 7070)
    .option('--pg-port <n>', 'PostgreSQL protocol port (0 turns it off)', parsePort, DEFAULT_PG_PORT)
    .option('--host <address>', 'address to listen on (HTTP and PostgreSQL)', '127.0.0.1')
    .option('--key-file <file>', 'encryption at rest: the master key file (as for `strata start`); default: STRATA_MASTER_KEY, else unencrypted')
    .addHelpText('after', '\nExample:\n  strata demo --rate 2000 --port 7171 --pg-port 5433\n  STRATA_MASTER_KEY=$(openssl rand -base64 32) strata demo --data ./demo-encrypted')
    .action(async (options: { rate: number; data: string; port: number; pgPort: number; host: string; keyFile?: string }) => {
      const config = await loadConfig(DEMO_CONFIG_PATH);
      const masterKey = await loadMasterKey({ keyFile: options.keyFile, dataDir: options.data });
      let stopTraffic = () => {};
      const { strata, address } = await serve(config, { ...options, masterKey }, () => stopTraffic());
      stopTraffic = startClickstream(strata.ingestor, { stream: 'clicks', rate: options.rate });
      console.log(`demo: ${options.rate} click events/s into stream "clicks"; open ${address}/ or GET ${address}/v1/streams`);
    });
}
