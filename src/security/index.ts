/**
 * Security (architecture §9): API tokens stored only as hashes, least-privilege policies with default deny,
 * console sessions, rate limits and the audit log. The edges (src/http, the PostgreSQL listener) call
 * {@link Security.authenticate} or {@link Security.verifyToken}, then {@link Security.authorize}.
 *
 * Encryption at rest: the master key wraps envelope data keys ({@link Keyring}).
 */
export { Security, type AccessContext, type AdminBootstrap, type SecurityOptions } from './security.js';
export { ForbiddenError, RateLimitedError, UnauthorizedError } from './errors.js';
export { Policies, type Action, type Resource } from './policies.js';
export { ADMIN_TOKEN_NAME, hashToken, newToken, type Principal, type TokenInfo } from './tokens.js';
export { AUDIT_TABLE } from './audit.js';
export { tableResource } from './resources.js';
export { deriveScramVerifier, formatScramVerifier, parseScramVerifier, SCRAM_ITERATIONS, type ScramVerifier } from './scram.js';
export { dataKeyId, MemoryKeyring, type DataKey, type Keyring } from './keyring.js';
export { loadMasterKey, MASTER_KEY_BYTES, MASTER_KEY_ENV, NEW_MASTER_KEY_ENV, parseMasterKey, readKeyFile } from './master-key.js';
export { checkDataDirEncryption, isEncryptedDataDir, KEYRING_FILE, keyringPath, SqliteKeyring, verifyMasterKey } from './data-keys.js';
export { loadServerKey, SecretSealer, SERVER_KEY_BYTES, serverKeyPath } from './server-key.js';
