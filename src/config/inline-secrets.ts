/**
 * Credentials never live in the project config (architecture §9): a config is committed, copied and pasted
 * into issues. A value is judged by its name and its content together, so that ordinary fields that happen to
 * say "key" (`partitionKey`, `dedupe.key`) and file paths (`tls.key: "./key.pem"`) pass.
 */

/** Key names that hold credentials, compared without case, `_` or `-`. */
const SECRET_NAMES = ['token', 'secret', 'password', 'passwd', 'apikey', 'accesskey', 'secretaccesskey', 'credential', 'credentials', 'privatekey', 'authorization'];

const PEM_BLOCK = /-----BEGIN [A-Z0-9 ]+-----/;
/** An AWS access key id: long-term (AKIA) or temporary (ASIA). */
const AWS_ACCESS_KEY_ID = /\b(AKIA|ASIA)[A-Z0-9]{16}\b/;
/** A file path: absolute, relative or home-relative, or a bare file name with an extension. */
const FILE_PATH = /^(\/|\.{1,2}\/|~\/)[\w./ -]*$|^[\w.-]+(\/[\w.-]+)*\.[A-Za-z0-9]{1,5}$/;

/** Whether a key name says it holds a credential (`apiKey`, `secret_access_key`, `db-password`...). */
function isSecretName(key: string): boolean {
  const normalized = key.toLowerCase().replace(/[_-]/g, '');
  return SECRET_NAMES.some((name) => normalized === name || normalized.endsWith(name));
}

/** Shannon entropy of the characters, in bits per character. */
function entropy(text: string): number {
  const counts = new Map<string, number>();
  for (const c of text) counts.set(c, (counts.get(c) ?? 0) + 1);
  let bits = 0;
  for (const count of counts.values()) {
    const p = count / text.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/** A string that looks generated rather than written: long, high-entropy, with no spaces. */
function looksRandom(value: string): boolean {
  return value.length >= 16 && !/\s/.test(value) && entropy(value) >= 3;
}

/**
 * The paths (`alerts.x.notify.headers.authorization`) of every inline credential in a raw config, with what
 * gave it away. Empty when there is none.
 */
export function findInlineSecrets(raw: unknown): string[] {
  const found: string[] = [];
  const visit = (value: unknown, path: string[], secretName: boolean) => {
    if (typeof value === 'string') {
      const at = path.join('.') || '(top level)';
      if (PEM_BLOCK.test(value)) found.push(`${at} holds a PEM block`);
      else if (AWS_ACCESS_KEY_ID.test(value)) found.push(`${at} holds an AWS access key id`);
      else if (secretName && !FILE_PATH.test(value) && looksRandom(value)) found.push(`${at} holds what looks like a credential`);
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => visit(item, [...path, String(i)], secretName));
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) visit(item, [...path, key], isSecretName(key));
    }
  };
  visit(raw, [], false);
  return found;
}
