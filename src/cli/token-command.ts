import { Command } from 'commander';
import { getJson, postJson, request } from './server-client.js';
import { renderTextTable } from './text-table.js';

interface TokenInfo {
  name: string;
  policies: string[];
  createdAt: string | null;
  lastUsed: string | null;
  fromEnvironment: boolean;
}

const URL_OPTION = ['--url <url>', 'base URL of the Strata HTTP API', 'http://127.0.0.1:7070'] as const;

/**
 * `strata token create|list|revoke`: API tokens, over the server's `/v1/tokens` with an admin token from
 * `STRATA_TOKEN` (or `STRATA_ADMIN_TOKEN`).
 */
export function tokenCommand(): Command {
  const command = new Command('token')
    .description('API tokens: create one for a policy, list them, revoke one (needs an admin token in STRATA_TOKEN)')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  STRATA_TOKEN=<admin token> strata token create ingest_bot --policy producer',
        '  strata token list',
        '  strata token revoke ingest_bot',
      ].join('\n'),
    );

  command.addCommand(
    new Command('create')
      .description('make a token for one or more policies of the config; prints it once (only its hash is kept)')
      .argument('<name>', 'the token name (letters, digits, _)')
      .requiredOption('--policy <policy>', 'a policy the token holds (repeat for more)', (value: string, previous: string[] = []) => [...previous, value])
      .option(...URL_OPTION)
      .addHelpText('after', '\nExample:\n  strata token create analyst_ann --policy analyst --url http://127.0.0.1:7070')
      .action(async (name: string, options: { policy: string[]; url: string }) => {
        const created = await postJson<{ name: string; token: string }>(options.url, '/v1/tokens', { name, policies: options.policy });
        console.log(created.token);
        console.error(`token "${created.name}" created for ${options.policy.join(', ')}: it is shown this once; keep it in a secret store`);
      }),
  );

  command.addCommand(
    new Command('list')
      .description("list the tokens: name, policies, created, last used (never a token's text)")
      .option(...URL_OPTION)
      .option('--json', 'print the JSON answer of GET /v1/tokens')
      .addHelpText('after', '\nExample:\n  strata token list --json')
      .action(async (options: { url: string; json?: boolean }) => {
        const answer = await getJson<{ tokens: TokenInfo[] }>(options.url, '/v1/tokens');
        if (options.json) {
          console.log(JSON.stringify(answer, null, 2));
          return;
        }
        const rows = answer.tokens.map((token) => [
          token.name,
          token.policies.join(', '),
          token.fromEnvironment ? '(STRATA_ADMIN_TOKEN)' : (token.createdAt ?? ''),
          token.lastUsed ?? 'never',
        ]);
        console.log(renderTextTable(['name', 'policies', 'created', 'last used'], rows));
      }),
  );

  command.addCommand(
    new Command('revoke')
      .description('revoke a token: it, and console sessions opened with it, stop working at once')
      .argument('<name>', 'the token name')
      .option(...URL_OPTION)
      .addHelpText('after', '\nExample:\n  strata token revoke ingest_bot')
      .action(async (name: string, options: { url: string }) => {
        await request(options.url, `/v1/tokens/${encodeURIComponent(name)}`, { method: 'DELETE' });
        console.log(`token "${name}" revoked`);
      }),
  );
  return command;
}
