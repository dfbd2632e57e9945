import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { ConfigError } from '../errors.js';
import { isEncryptedDataDir, KEYRING_FILE, loadMasterKey, NEW_MASTER_KEY_ENV, SqliteKeyring } from '../security/index.js';
import { lockDataDir } from '../strata.js';

/**
 * `strata keys rotate`: moves an encrypted data directory to a new master key. Only the data keys in
 * `keyring.db` are re-wrapped (and the key check renewed), in one transaction; the log, the Parquet files and the
 * view versions stay as they are, encrypted under data keys that do not change. Strata must be stopped: the
 * command takes the data directory's lock, as `strata start` does, and is refused while a live process holds it.
 */
export function keysCommand(): Command {
  const command = new Command('keys')
    .description('encryption at rest: manage the master key of an encrypted data directory (Strata stopped)')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  strata keys rotate --data ./data --key-file old.key --new-key-file new.key',
        '  STRATA_MASTER_KEY=<old base64> STRATA_NEW_MASTER_KEY=<new base64> strata keys rotate --data ./data',
      ].join('\n'),
    );

  command.addCommand(
    new Command('rotate')
      .description(
        're-wrap every data key under a new master key, without rewriting data; afterwards only the new key starts Strata',
      )
      .option('-d, --data <dir>', 'data directory', './data')
      .option('--key-file <file>', 'the current master key file; default: STRATA_MASTER_KEY')
      .option('--new-key-file <file>', `the new master key file (base64 of 32 bytes, or 32 raw bytes; mode 0600); default: ${NEW_MASTER_KEY_ENV}`)
      .addHelpText(
        'after',
        '\nExample:\n' +
          '  (umask 077; openssl rand -base64 32 > /etc/strata/master-2.key)\n' +
          '  strata keys rotate --data ./data --key-file /etc/strata/master.key --new-key-file /etc/strata/master-2.key\n' +
          '  strata start --data ./data --key-file /etc/strata/master-2.key',
      )
      .action(async (options: { data: string; keyFile?: string; newKeyFile?: string }) => {
        const count = await rotateMasterKey(options);
        console.log(`re-wrapped ${count} data key(s) of ${resolve(options.data)} under the new master key; the old key no longer opens it`);
      }),
  );
  return command;
}

/** The work of `strata keys rotate`, callable without the CLI: answers how many data keys were re-wrapped. */
export async function rotateMasterKey(options: {
  readonly data: string;
  readonly keyFile?: string | undefined;
  readonly newKeyFile?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
}): Promise<number> {
  const dataDir = resolve(options.data);
  if (!isEncryptedDataDir(dataDir)) {
    throw new ConfigError(`data directory ${dataDir} is not encrypted (it has no ${KEYRING_FILE}): there is no master key to rotate`);
  }
  const env = options.env ?? process.env;
  const oldKey = await loadMasterKey({ keyFile: options.keyFile, dataDir, env });
  if (oldKey === null) throw new ConfigError('the current master key is needed: set STRATA_MASTER_KEY or pass --key-file');
  const newKey = await loadMasterKey({ keyFile: options.newKeyFile, dataDir, env, envName: NEW_MASTER_KEY_ENV, flag: '--new-key-file' });
  if (newKey === null) throw new ConfigError(`the new master key is needed: set ${NEW_MASTER_KEY_ENV} or pass --new-key-file`);
  if (newKey.equals(oldKey)) throw new ConfigError('the new master key is the current one: nothing to rotate');
  const lockPath = await lockDataDir(dataDir);
  try {
    return SqliteKeyring.rotate(dataDir, oldKey, newKey);
  } finally {
    await rm(lockPath, { force: true });
    oldKey.fill(0);
    newKey.fill(0);
  }
}
