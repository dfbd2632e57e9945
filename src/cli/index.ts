import { Command } from 'commander';
import { ingestCommand } from './ingest-command.js';
import { importCommand } from './import-command.js';
import { demoCommand } from './demo-command.js';
import { startCommand } from './start-command.js';
import { statusCommand } from './status-command.js';
import { sqlCommand } from './sql-command.js';
import { catalogCommand } from './catalog-command.js';
import { batchCommand } from './batch-command.js';
import { quarantineCommand } from './quarantine-command.js';
import { tokenCommand } from './token-command.js';
import { keysCommand } from './keys-command.js';

/** Builds the `strata` command line: one subcommand per file beside this one. */
export function buildProgram(): Command {
  const program = new Command('strata')
    .description('Strata: a Lambda-architecture data platform (stream log, master dataset, batch, speed and serving layers)')
    .showHelpAfterError()
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  strata start --config strata.config.json --data ./data',
        '  strata status --json',
        '  strata <command> --help',
      ].join('\n'),
    );
  program.addCommand(startCommand());
  program.addCommand(demoCommand());
  program.addCommand(ingestCommand());
  program.addCommand(importCommand());
  program.addCommand(statusCommand());
  program.addCommand(sqlCommand());
  program.addCommand(catalogCommand());
  program.addCommand(batchCommand());
  program.addCommand(tokenCommand());
  program.addCommand(quarantineCommand());
  program.addCommand(keysCommand());
  return program;
}

/** Entry point of the `strata` bin. */
export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}
