import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { clicksConfig } from '../fixtures/strata.js';

describe('the sql config section', () => {
  it('defaults to a 30 s timeout and a 4GB memory limit', () => {
    expect(parseConfig(clicksConfig()).sql).toEqual({ timeoutSeconds: 30, memoryLimit: '4GB' });
    expect(parseConfig(clicksConfig({ sql: { timeoutSeconds: 2.5 } })).sql).toEqual({ timeoutSeconds: 2.5, memoryLimit: '4GB' });
  });

  it('refuses a bad value or an unknown key, naming it', () => {
    expect(() => parseConfig(clicksConfig({ sql: { memoryLimit: 'lots' } }))).toThrow(/sql\.memoryLimit: expected a size such as "512MB"/);
    expect(() => parseConfig(clicksConfig({ sql: { timeoutSeconds: 0 } }))).toThrow(/sql\.timeoutSeconds/);
    expect(() => parseConfig({ ...clicksConfig(), sql: { timeout: 5 } })).toThrow(/sql: unknown key\(s\) "timeout"/);
  });
});
