import { Command } from 'commander';
import { followRun } from './batch-command.js';
import { request } from './server-client.js';

/**
 * `strata quarantine replay STREAM`: after the stream's rules were fixed (and Strata restarted with them), runs
 * the records again through the current rules. Quarantine is the rules applied to the master dataset, never a
 * copy taken out of it, so nothing was lost: the quarantine table already follows the current rules, and this
 * recomputes the stream's views from every record (a batch run of those views), so the records the fix
 * repaired are counted. Prints what stays quarantined.
 */
export function quarantineCommand(): Command {
  const command = new Command('quarantine')
    .description("a stream's quarantined records (SQL: <stream>__quarantine)")
    .addHelpText('after', '\nExample:\n  strata quarantine replay clicks');
  command
    .command('replay')
    .description("run the stream's records through the current rules again: recompute its views, report what stays quarantined")
    .argument('<stream>', 'the stream whose rules were fixed')
    .option('--url <url>', 'base URL of the Strata HTTP API', 'http://127.0.0.1:7070')
    .addHelpText('after', '\nExample:\n  strata quarantine replay clicks --url http://127.0.0.1:7070')
    .action(async (stream: string, options: { url: string }) => {
      const started = performance.now();
      const response = await request(options.url, `/v1/streams/${encodeURIComponent(stream)}/quarantine/replay`, { method: 'POST' });
      const answer = (await response.json()) as { id: string | null; views: string[]; quarantined: number };
      if (answer.id !== null) console.log(await followRun(options.url, answer.id, started));
      else console.log(`no view reads ${stream}: nothing to recompute`);
      console.log(`${stream}: ${answer.quarantined.toLocaleString('en-US')} records stay quarantined under the current rules (SQL: ${stream}__quarantine)`);
    });
  return command;
}
