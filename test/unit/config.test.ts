// Each adapter owns its variables, and they still reach one validation that names the variable.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, localChannelExposure } from '../../src/config/env.js';

const problems = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

describe('configuration owned by the adapters', () => {
  it('Teams has its own user cache TTL: SLACK_USER_CACHE_TTL no longer sets it', () => {
    const cfg = loadConfig({ SLACK_USER_CACHE_TTL: '1s' });
    expect(cfg.SLACK_USER_CACHE_TTL).toBe(1000);
    expect(cfg.TEAMS_USER_CACHE_TTL).toBe(10 * 60_000);
    expect(loadConfig({ TEAMS_USER_CACHE_TTL: '30s' }).TEAMS_USER_CACHE_TTL).toBe(30_000);
  });

  it.each([
    ['TEAMS_USER_CACHE_TTL', 'soon'],
    ['SLACK_BOT_TOKEN', 'not-a-token'],
    ['MICROSOFT_APP_ID', 'nope'],
    ['AZURE_READ_CONCURRENCY', '0'],
    ['JIT_NSG_PRIORITY_RANGE', '50-60'],
    ['PAGERDUTY_API_URL', 'not a url'],
    ['JIT_REQUEST_RATE', 'lots'],
    ['JIT_NSG_WRITES', 'nsg'],
  ])('a bad %s is refused with a message naming it', (name, value) => {
    const got = problems({ [name]: value });
    expect(got).toHaveLength(1);
    expect(got[0]).toMatch(new RegExp(`^${name}: `));
  });

  it('the checks across an adapter\'s variables still run, in the platforms\' order', () => {
    expect(problems({ SLACK_SIGNING_SECRET: 'abcdefghij', MICROSOFT_APP_PASSWORD: 'x', JIT_DEFENDER_NSG_FALLBACK: 'true' })).toEqual([
      'SLACK_BOT_TOKEN: missing; Slack needs both SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN (or neither, to run without Slack)',
      'MICROSOFT_APP_ID: missing; MICROSOFT_APP_PASSWORD is set without it',
      'JIT_DEFENDER_NSG_FALLBACK: only used with JIT_NETWORK=defender',
    ]);
  });

  it('JIT_NSG_WRITES: auto by default, rules accepted with the Azure network, named when it has nothing to act on', () => {
    expect(loadConfig({}).JIT_NSG_WRITES).toBe('auto');
    expect(loadConfig({ JIT_NETWORK: 'azure', JIT_NSG_WRITES: 'rules' }).JIT_NSG_WRITES).toBe('rules');
    expect(problems({ JIT_NSG_WRITES: 'rules' })).toEqual(['JIT_NSG_WRITES: only used with JIT_NETWORK=azure or defender']);
    expect(problems({ JIT_NSG_WRITES: 'whole' })[0]).toMatch(/^JIT_NSG_WRITES: must be auto .* or rules/);
  });

  it('each chat platform says what exposes the server; the local channel is then off by default', () => {
    const cfg = loadConfig({ SLACK_SIGNING_SECRET: 'abcdefghij', SLACK_BOT_TOKEN: 'xoxb-1', PUBLIC_URL: 'https://jit.example.com' });
    expect(localChannelExposure(cfg)).toEqual(['Slack (SLACK_SIGNING_SECRET)', 'PUBLIC_URL']);
    expect(cfg.JIT_LOCAL_CHANNEL).toBe(false);
    const tenant = '11111111-2222-4333-8444-555555555555';
    expect(loadConfig({ MICROSOFT_APP_ID: tenant, MICROSOFT_APP_PASSWORD: 'x', MICROSOFT_APP_TENANT_ID: tenant.toUpperCase() }).TEAMS_ALLOWED_TENANTS).toEqual([tenant]);
  });
});
