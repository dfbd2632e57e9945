import { describe, expect, it } from 'vitest';
import { parseConfig, type ConfigInput } from '../../src/config/index.js';
import { findInlineSecrets } from '../../src/config/inline-secrets.js';
import { clicksConfig } from '../fixtures/strata.js';

/** The config error of `input`, or null when it loads. */
function configError(input: unknown): string | null {
  try {
    parseConfig(input, 'strata.config.json');
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

const withPolicies = (policies: unknown) => ({ ...clicksConfig(), policies }) as ConfigInput;

describe('policies in the config', () => {
  it('load with the actions and resource kinds Strata knows, globs included', () => {
    const config = parseConfig(
      withPolicies({
        producer: { allow: [{ actions: ['ingest'], resources: ['stream:clicks'] }] },
        analyst: { allow: [{ actions: ['read', 'query'], resources: ['view:*', 'table:clicks', 'table:click_*'] }] },
        operator: { allow: [{ actions: ['batch', 'admin'], resources: ['view:*', 'table:*'] }] },
      }),
    );
    expect([...config.policies.keys()]).toEqual(['producer', 'analyst', 'operator']);
  });

  it('refuse an unknown action, naming the policy', () => {
    const error = configError(withPolicies({ analyst: { allow: [{ actions: ['read', 'raed'], resources: ['view:*'] }] } }));
    expect(error).toContain('policies.analyst.allow.0.actions.1');
    expect(error).toContain('unknown action "raed"; expected one of ingest, read, query, batch, admin');
  });

  it('refuse a resource of an unknown kind, or without a kind, naming the policy', () => {
    const unknownKind = configError(withPolicies({ reader: { allow: [{ actions: ['read'], resources: ['topic:clicks'] }] } }));
    expect(unknownKind).toContain('policies.reader.allow.0.resources.0');
    expect(unknownKind).toContain('unknown resource kind "topic"');
    const noKind = configError(withPolicies({ reader: { allow: [{ actions: ['read'], resources: ['clicks'] }] } }));
    expect(noKind).toContain('policies.reader.allow.0.resources.0');
    expect(noKind).toContain('is not kind:NAME');
    const badName = configError(withPolicies({ reader: { allow: [{ actions: ['read'], resources: ['view:../x'] }] } }));
    expect(badName).toContain('policies.reader');
  });

  it('refuse redefining the built-in admin policy, an empty policy and unknown keys', () => {
    expect(configError(withPolicies({ admin: { allow: [{ actions: ['read'], resources: ['view:*'] }] } }))).toContain('the admin policy is built in');
    expect(configError(withPolicies({ empty: { allow: [] } }))).toContain('policies.empty.allow: allows nothing');
    expect(configError(withPolicies({ typo: { allows: [] } }))).toContain('policies.typo: unknown key(s) "allows"');
  });

  it('take security limits and TLS file paths', () => {
    const config = parseConfig({ ...clicksConfig(), security: { rateLimit: { requestsPerSecond: 100 } }, tls: { cert: './cert.pem', key: './key.pem' } });
    expect(config.security.rateLimit).toMatchObject({ requestsPerSecond: 100, failedAuthPerMinute: 60 });
    expect(config.tls).toEqual({ cert: './cert.pem', key: './key.pem' });
  });
});

describe('credentials in the config', () => {
  const PEM = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n';

  it('refuse a PEM block anywhere, saying to use the environment or a file', () => {
    const error = configError({ ...clicksConfig(), tls: { cert: './cert.pem', key: PEM } });
    expect(error).toContain('tls.key holds a PEM block');
    expect(error).toContain('pass them in the environment');
    expect(error).toContain('keep them in a file');
  });

  it('refuse an AWS access key id, whatever its key', () => {
    expect(configError({ ...clicksConfig(), views: { v: "SELECT 'AKIAIOSFODNN7EXAMPLE' AS k, count(*) AS n FROM clicks GROUP BY k" } })).toContain(
      'views.v holds an AWS access key id',
    );
    expect(findInlineSecrets({ s3: { keyId: 'ASIAY34FZKBOKMUTVV7A' } })).toEqual(['s3.keyId holds an AWS access key id']);
  });

  it('refuse a random-looking string under a credential name, before any other check', () => {
    const error = configError({ ...clicksConfig(), secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' });
    expect(error).toContain('secretAccessKey holds what looks like a credential');
    for (const key of ['token', 'apiKey', 'api_key', 'password', 'passwd', 'accessKey', 'credentials', 'dbPassword']) {
      expect(findInlineSecrets({ service: { [key]: 'q8Z3vN1xK7pL0mR5tY2wB9cF' } })).toEqual([`service.${key} holds what looks like a credential`]);
    }
  });

  it('pass file paths, short plain values and ordinary fields that say "key"', () => {
    expect(
      findInlineSecrets({
        tls: { cert: './cert.pem', key: './key.pem' },
        tlsKey: '/etc/strata/key.pem',
        apiKey: '~/secrets/api-key.txt',
        token: 'ci/token.txt',
        password: 'local',
        streams: { clicks: { partitionKey: 'user_id', transform: { dedupe: { key: 'event_id', within: '24h' } } } },
        policies: { producer: { allow: [{ actions: ['ingest'], resources: ['stream:clicks'] }] } },
      }),
    ).toEqual([]);
    expect(configError({ ...clicksConfig(), tls: { cert: './cert.pem', key: './key.pem' } })).toBeNull();
  });
});
