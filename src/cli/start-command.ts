import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { loadConfig } from '../config/index.js';
import { parsePort } from './arguments.js';
import { serve } from './serve.js';

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
    .description('start Strata: the stream log and the HTTP API')
    .option('-c, --config <file>', 'project config (strata.config.ts or .json); default: the one in this folder')
    .option('-d, --data <dir>', 'data directory', './data')
    .option('-p, --port <n>', 'HTTP port (0 picks a free one)', parsePort, 7070)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .addHelpText('after', '\nExample:\n  strata start --config examples/clickstream/strata.config.json --data ./data --port 7070')
    .action(async (options: { config?: string; data: string; port: number; host: string }) => {
      await serve(await loadConfig(findConfigFile(options.config)), options);
    });
}
