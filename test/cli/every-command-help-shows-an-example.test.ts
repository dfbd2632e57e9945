import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/index.js';

/** The program and every command under it, with its full name (`strata catalog`). */
function commands(command: Command, prefix = ''): [string, Command][] {
  const name = `${prefix}${command.name()}`;
  return [[name, command], ...command.commands.flatMap((sub) => commands(sub, `${name} `))];
}

/** What `--help` prints, the text added after the options included. */
function helpText(command: Command): string {
  let out = '';
  command.configureOutput({ writeOut: (text) => (out += text), writeErr: (text) => (out += text) });
  command.outputHelp();
  return out;
}

describe('--help', () => {
  const all = commands(buildProgram());

  it('covers every command of the CLI', () => {
    expect(all.map(([name]) => name)).toEqual(
      expect.arrayContaining(['strata', 'strata start', 'strata demo', 'strata ingest', 'strata import', 'strata status', 'strata sql', 'strata catalog', 'strata batch']),
    );
  });

  it.each(all)('of %s shows an example invocation of it', (name, command) => {
    const help = helpText(command);
    expect(help).toMatch(/\nExamples?:\n/);
    // The example runs the command itself, not another one.
    expect(help.slice(help.search(/\nExamples?:\n/))).toContain(`  ${name === 'strata' ? 'strata ' : name}`);
  });

  it('of strata status documents --json', () => {
    const help = helpText(all.find(([name]) => name === 'strata status')![1]);
    expect(help).toMatch(/--json\s+print the JSON answer of GET \/v1\/streams/);
    expect(help).toContain('strata status --json');
  });
});
