import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError } from '../errors.js';

/**
 * The server key: 32 bytes that seal the secrets Strata must hold in a usable form (a token's text, which AWS
 * Signature V4 needs on the server to recompute a signature) and sign what Strata hands out and takes back (Kinesis
 * shard iterators). It lives outside the data directory, so a copy of the data directory (a backup, a disk sent
 * for repair) holds sealed secrets and nothing that opens them.
 */

/** Bytes of the server key (AES-256-GCM). */
export const SERVER_KEY_BYTES = 32;

/** The key file's path for a data directory: a sibling of it, `<dataDir>.server-key`, never inside it. */
export function serverKeyPath(dataDir: string): string {
  return `${dataDir.replace(/[\\/]+$/, '')}.server-key`;
}

/**
 * The server key: `masterKey` when one is given (with encryption at rest, Strata passes a data key of its keyring,
 * wrapped by the master key, so that `strata keys rotate` keeps it), otherwise the key file at
 * {@link serverKeyPath}, which the first start creates (32 random bytes, mode 0600). A key file that group or
 * others may read is refused, as ssh refuses such a private key: a secret that leaked is no longer one.
 */
export async function loadServerKey(options: { masterKey: Buffer | null; dataDir: string }): Promise<Buffer> {
  if (options.masterKey !== null) {
    if (options.masterKey.length !== SERVER_KEY_BYTES) {
      throw new ConfigError(`the master key is ${options.masterKey.length} bytes; it must be ${SERVER_KEY_BYTES} (e.g. \`openssl rand -hex 32\`)`);
    }
    return options.masterKey;
  }
  const path = serverKeyPath(options.dataDir);
  try {
    // `wx`: two starts racing on a fresh directory cannot both create it; the loser reads the winner's key.
    const file = await open(path, 'wx', 0o600);
    try {
      const key = randomBytes(SERVER_KEY_BYTES);
      await file.writeFile(key);
      await file.sync();
      await syncDirectory(dirname(path));
      return key;
    } finally {
      await file.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const mode = (await stat(path)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new ConfigError(`the server key file ${path} may be read by others (mode ${mode.toString(8).padStart(4, '0')}); run \`chmod 600 ${path}\``);
  }
  const key = await readFile(path);
  if (key.length !== SERVER_KEY_BYTES) {
    throw new ConfigError(`the server key file ${path} holds ${key.length} bytes, not ${SERVER_KEY_BYTES}; restore it from a backup (tokens sealed under it cannot sign Kinesis requests otherwise)`);
  }
  return key;
}

/** Makes a new file's directory entry durable. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

const SEALED_PREFIX = 'v1';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Seals and opens small secrets under the server key with AES-256-GCM: `v1.<nonce>.<ciphertext>.<tag>`, base64url.
 * Each seal draws a fresh random nonce (a few secrets per token, so a repeated nonce under one key is out of reach).
 * The `context` (a token's name) is bound in as associated data, so a sealed secret copied to another token's row
 * does not open there.
 */
export class SecretSealer {
  constructor(private readonly key: Buffer) {
    if (key.length !== SERVER_KEY_BYTES) throw new RangeError(`a server key is ${SERVER_KEY_BYTES} bytes, got ${key.length}`);
  }

  seal(secret: string, context: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return [SEALED_PREFIX, nonce, ciphertext, cipher.getAuthTag()].map((part) => (typeof part === 'string' ? part : part.toString('base64url'))).join('.');
  }

  /** The secret, or null when `sealed` is malformed, was sealed under another key or for another context. */
  open(sealed: string, context: string): string | null {
    const parts = sealed.split('.');
    if (parts.length !== 4 || parts[0] !== SEALED_PREFIX) return null;
    const [nonce, ciphertext, tag] = parts.slice(1).map((part) => Buffer.from(part, 'base64url'));
    if (nonce!.length !== NONCE_BYTES || tag!.length !== TAG_BYTES) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, nonce!);
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(tag!);
      return Buffer.concat([decipher.update(ciphertext!), decipher.final()]).toString('utf8');
    } catch {
      return null;
    }
  }
}
