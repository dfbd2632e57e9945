import type { ProjectConfig } from '../config/index.js';
import type { Keyring } from '../security/index.js';
import { KinesisQuarantine } from './quarantine-store.js';
import { ShardIterators } from './shard-iterators.js';

/**
 * What the Kinesis API keeps beyond a request: the quarantine of the records it accepted but the schema refuses,
 * and the signer of its shard iterators (keyed by the server key, so iterators survive a restart). Opened by
 * {@link Strata} before the SQL engine, whose `<stream>__quarantine` tables read the quarantine.
 */
export class KinesisState {
  private constructor(
    readonly quarantine: KinesisQuarantine,
    readonly iterators: ShardIterators,
  ) {}

  static async open(options: { quarantineDir: string; config: ProjectConfig; serverKey: Buffer; keyring?: Keyring | null }): Promise<KinesisState> {
    const quarantine = await KinesisQuarantine.open(options.quarantineDir, options.config, options.keyring ?? null);
    return new KinesisState(quarantine, new ShardIterators(options.serverKey));
  }

  async close(): Promise<void> {
    await this.quarantine.close();
  }
}
