import { readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { ConfigError } from '../errors.js';

/**
 * Where the master key of encryption at rest comes from. It is never in the project config (architecture §9):
 * either the environment, `STRATA_MASTER_KEY` (base64 of exactly 32 bytes, e.g. `openssl rand -base64 32`), or
 * a key file (`--key-file FILE`) that holds either the same base64 text or exactly 32 raw bytes. A key file is
 * refused when it lies inside the data directory (a copy of the directory would carry its own key) or when its
 * mode lets group or others at it. Both sources at once are refused: which one wins would be a guess.
 */
export const MASTER_KEY_ENV = 'STRATA_MASTER_KEY';
/** The new master key for `strata keys rotate`, when `--new-key-file` is not given. */
export const NEW_MASTER_KEY_ENV = 'STRATA_NEW_MASTER_KEY';
/** Bytes in a master key: AES-256. */
export const MASTER_KEY_BYTES = 32;

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$|^[A-Za-z0-9_-]+$/;

/** Decodes the base64 text of a master key; `source` names where it came from, for the error. */
export function parseMasterKey(text: string, source: string): Buffer {
  const trimmed = text.trim();
  if (trimmed === '') throw new ConfigError(`${source} is empty: it must hold base64 of ${MASTER_KEY_BYTES} bytes (openssl rand -base64 32)`);
  const key = BASE64.test(trimmed) ? Buffer.from(trimmed, trimmed.includes('-') || trimmed.includes('_') ? 'base64url' : 'base64') : null;
  if (key === null) throw new ConfigError(`${source} is not base64: it must hold base64 of ${MASTER_KEY_BYTES} bytes (openssl rand -base64 32)`);
  if (key.length !== MASTER_KEY_BYTES) {
    throw new ConfigError(`${source} decodes to ${key.length} bytes; a master key is exactly ${MASTER_KEY_BYTES} bytes (openssl rand -base64 32)`);
  }
  return key;
}

/**
 * Reads a key file: exactly 32 bytes are taken raw, anything else as base64 text. Refused when the file lies
 * inside `dataDir` (real paths compared, so a symlink does not hide it) or when group or others may access it.
 */
export async function readKeyFile(path: string, dataDir: string): Promise<Buffer> {
  const file = resolve(path);
  let real: string;
  let mode: number;
  try {
    real = await realpath(file);
    mode = (await stat(real)).mode;
  } catch (error) {
    throw new ConfigError(`key file ${file} cannot be read: ${(error as Error).message}`);
  }
  const data = await realPathOf(resolve(dataDir));
  const inside = relative(data, real);
  if (inside === '' || (!inside.startsWith('..') && !isAbsolute(inside))) {
    throw new ConfigError(`key file ${file} lies inside the data directory ${data}: keep the master key outside the data it protects`);
  }
  if ((mode & 0o077) !== 0) {
    throw new ConfigError(
      `key file ${file} is accessible to group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}): chmod 600 ${file}`,
    );
  }
  const bytes = await readFile(real);
  if (bytes.length === MASTER_KEY_BYTES) return bytes;
  return parseMasterKey(bytes.toString('utf8'), `key file ${file}`);
}

/** The real path of `path`, or of its nearest existing ancestor joined with the rest (a data dir not made yet). */
async function realPathOf(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const parent = dirname(path);
    if (parent === path) return path;
    return join(await realPathOf(parent), basename(path));
  }
}

/**
 * The master key from `keyFile` or from the environment variable `envName` (default STRATA_MASTER_KEY); null when
 * neither is given, and Strata runs unencrypted. Both given is refused.
 */
export async function loadMasterKey(options: {
  readonly keyFile?: string | undefined;
  readonly dataDir: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly envName?: string;
  readonly flag?: string;
}): Promise<Buffer | null> {
  const envName = options.envName ?? MASTER_KEY_ENV;
  const fromEnv = (options.env ?? process.env)[envName];
  // Set but empty is an error, not "no key": `STRATA_MASTER_KEY=$(cat missing-file)` must not run unencrypted.
  const given = fromEnv !== undefined;
  if (options.keyFile !== undefined) {
    if (given) {
      throw new ConfigError(`both ${envName} and ${options.flag ?? '--key-file'} are given: pass the master key one way only`);
    }
    return readKeyFile(options.keyFile, options.dataDir);
  }
  return given ? parseMasterKey(fromEnv, envName) : null;
}
