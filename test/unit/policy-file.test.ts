import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PolicyFileError, parsePolicyText } from '../../src/config/policy-file.js';
import { ConfigError, loadConfig } from '../../src/config/env.js';
import { p } from '../fixtures/ids.js';

function problems(yaml: string): string[] {
  try {
    parsePolicyText(yaml, 'p.yaml');
  } catch (e) {
    if (e instanceof PolicyFileError) return e.problems;
    throw e;
  }
  throw new Error('expected the policy file to be rejected');
}

const TARGET = `targets:\n  vm1: { id: /subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1, os: windows }\n`;

describe('policy file', () => {
  it('the shipped example policy is valid', () => {
    const book = parsePolicyText(readFileSync('config/policy.example.yaml', 'utf8'));
    expect(Object.keys(book.targets)).toEqual(['vm1', 'db1', 'dev1']);
    expect(book.policies.map((p) => p.name)).toEqual(['subscription', 'db1-office-only', 'dev']);
  });

  it.each([
    [
      'a bad duration names the key path',
      `${TARGET}policies:\n  prod:\n    scope: /subscriptions/s\n    ports:\n      - { port: 22 }\n      - { port: 3389, maxDuration: "99x" }\n`,
      'policies.prod.ports[1].maxDuration: "99x" is not a duration',
    ],
    ['a port out of range', `${TARGET}policies:\n  p:\n    scope: /subscriptions/s\n    ports: [{ port: 70000 }]\n`, 'policies.p.ports[0].port: must be a port 1-65535'],
    ['a malformed source prefix', `${TARGET}policies:\n  p:\n    scope: /subscriptions/s\n    ports: [{ port: 22, allowedSourcePrefixes: ["300.1.1.1"] }]\n`, 'policies.p.ports[0].allowedSourcePrefixes[0]:'],
    ['an unknown role', `roles:\n  - { principal: a@b.c, role: JIT Overlord, scope: /subscriptions/s }\n`, 'roles[0].role: must be one of JIT Reader, JIT Requester, JIT Approver, JIT Admin'],
    ['a scope that is not an ARM id', `roles:\n  - { principal: a@b.c, role: JIT Reader, scope: subscriptions/s }\n`, 'roles[0].scope: must be an ARM resource id'],
    ['an undefined group', `roles:\n  - { principal: group:ghosts, role: JIT Reader, scope: /subscriptions/s }\n`, 'roles[0].principal: group "ghosts" is not defined'],
    ['a misspelt key', `${TARGET}policies:\n  p:\n    scope: /s\n    aproval: { required: true }\n`, 'policies.p: Unrecognized key: "aproval"'],
    ['a bad OS', `targets:\n  vm1: { id: /x, os: solaris }\n`, 'targets.vm1.os: must be windows or linux'],
    ['a duplicated port', `${TARGET}policies:\n  p:\n    scope: /s\n    ports: [{ port: 22 }, { port: 22 }]\n`, 'policies.p.ports[1]: port 22/tcp is listed twice'],
    ['a repeated extend option (30m and 1800 seconds are one button)', `${TARGET}policies:\n  p:\n    scope: /s\n    reminder: { before: 10m, extendOptions: [30m, 1h, 1800] }\n`, 'policies.p.reminder.extendOptions[2]: 30m is listed twice (as extendOptions[0])'],
    ['quorum 0', `${TARGET}policies:\n  p:\n    scope: /s\n    approval: { quorum: 0 }\n`, 'policies.p.approval.quorum: must be at least 1'],
    ['broken YAML', `targets: [\n`, 'YAML:'],
  ])('%s', (_name, yaml, expected) => {
    const got = problems(yaml);
    expect(got.some((p) => p.includes(expected)), `problems were:\n${got.join('\n')}`).toBe(true);
  });

  it('chat platforms are keys by name: the server\'s own names pass, a misspelt one is refused with its path', () => {
    const yaml = (platform: string) =>
      `principals:\n  a@b.c: { ${platform}: U1 }\n${TARGET}policies:\n  p:\n    scope: /s\n    channels: { ${platform}: { approvals: C1 } }\n    routing:\n      - { name: "*", ${platform}: { dm: true } }\n`;
    const book = parsePolicyText(yaml('teams'), 'p.yaml', ['slack', 'teams']);
    expect(book.principals[p('a@b.c')]).toEqual({ teams: 'U1' });
    expect(book.policies[0]!.channels).toEqual({ teams: { approvals: 'C1' } });
    expect(book.policies[0]!.routing![0]!.platforms).toEqual({ teams: { dm: true } });
    let refused: string[] = [];
    try {
      parsePolicyText(yaml('slak'), 'p.yaml', ['slack', 'teams']);
    } catch (e) {
      if (e instanceof PolicyFileError) refused = e.problems;
    }
    expect(refused).toEqual([
      'principals.a@b.c.slak: there is no chat platform called "slak" (this server has slack, teams)',
      'policies.p.channels.slak: there is no chat platform called "slak" (this server has slack, teams)',
      'policies.p.routing[0].slak: there is no chat platform called "slak" (this server has slack, teams)',
    ]);
    expect(problems(yaml('Slack!')).join('\n')).toMatch(/principals\.a@b\.c\.Slack!: .*is not a chat platform name/);
    expect(problems(`${TARGET}policies:\n  p:\n    scope: /s\n    routing: [{ name: x }]\n`).join('\n')).toMatch(/routing\[0\]: needs a destination on at least one chat platform/);
  });

  it('principals are parsed where the file names them: lower-cased keys, members and refs; a non-address is refused with its path', () => {
    const book = parsePolicyText(
      `principals:\n  Alice@Contoso.com: { slack: U1 }\ngroups:\n  ops: [Bob@Contoso.com]\nroles:\n  - { principal: Carol@Contoso.com, role: JIT Admin, scope: /s }\n  - { principal: group:ops, role: JIT Reader, scope: /s }\n${TARGET}`,
    );
    expect(Object.keys(book.principals)).toEqual(['alice@contoso.com']);
    expect(book.groups.ops).toEqual(['bob@contoso.com']);
    expect(book.roles.map((r) => r.principal)).toEqual(['carol@contoso.com', 'group:ops']);
    expect(problems(`principals:\n  alice: { slack: U1 }\n${TARGET}`)).toEqual(['principals.alice: "alice" is not a principal (an email / UPN like alice@contoso.com)']);
    expect(problems(`groups:\n  ops: ["bob smith@contoso.com"]\n${TARGET}`).join('\n')).toMatch(/groups\.ops\[0\]: must be an email/);
    expect(problems(`roles:\n  - { principal: bob, role: JIT Admin, scope: /s }\n${TARGET}`).join('\n')).toMatch(/roles\[0\]\.principal: must be a principal \(alice@contoso.com\) or a group/);
  });

  it('durations accept ISO-8601, short forms and seconds for demos', () => {
    const book = parsePolicyText(`${TARGET}policies:\n  p:\n    scope: /s\n    ports: [{ port: 22, maxDuration: 45s }, { port: 3389, maxDuration: PT1H30M }]\n    approval: { timeout: 10m }\n`);
    expect(book.policies[0]!.ports!.map((r) => r.maxDurationMs)).toEqual([45_000, 5_400_000]);
    expect(book.policies[0]!.approval!.timeoutMs).toBe(600_000);
  });
});

describe('environment configuration', () => {
  function configProblems(env: Record<string, string>): string[] {
    try {
      loadConfig(env);
    } catch (e) {
      if (e instanceof ConfigError) return e.problems;
      throw e;
    }
    throw new Error('expected a configuration error');
  }

  it('defaults work with nothing set', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ PORT: 3000, HOST: '127.0.0.1', JIT_NETWORK: 'simulated', JIT_MIN_DURATION: 300_000, JIT_LOCAL_CHANNEL: true });
    expect(c.REDIS_URL).toBeUndefined();
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT:'],
    [{ REDIS_URL: 'http://localhost:6379' }, 'REDIS_URL: must start with redis://'],
    [{ JIT_NETWORK: 'aws' }, 'JIT_NETWORK: must be "simulated", "azure" (the bot writes NSG / firewall rules) or "defender"'],
    [{ JIT_NETWORK: 'defender' }, 'AZURE_SUBSCRIPTION_ID: missing; JIT_NETWORK=defender lists Defender for Cloud\'s JIT policies per subscription'],
    [{ JIT_DEFENDER_NSG_FALLBACK: 'true', JIT_NETWORK: 'azure' }, 'JIT_DEFENDER_NSG_FALLBACK: only used with JIT_NETWORK=defender'],
    [{ AZURE_ARM_CA_FILE: '/tmp/ca.pem' }, 'AZURE_ARM_CA_FILE: only used with JIT_NETWORK=azure or defender'],
    [{ JIT_MIN_DURATION: 'soon' }, 'JIT_MIN_DURATION: "soon" is not a duration'],
    [{ PUBLIC_URL: 'jit.contoso.com' }, 'PUBLIC_URL: must be an absolute http(s) URL'],
    [{ JIT_TRUSTED_PROXIES: '10.0.0.0/8,nonsense' }, 'JIT_TRUSTED_PROXIES: "nonsense" is not an address'],
    [{ HOST: '0.0.0.0', JIT_LOCAL_CHANNEL: 'true' }, 'JIT_LOCAL_CHANNEL: the local channel lets anyone act as any principal'],
  ])('%o is refused naming the variable', (env, expected) => {
    const got = configProblems(env);
    expect(got.some((p) => p.startsWith(expected.split(':')[0]!) && p.includes(expected.split(': ')[1] ?? '')), got.join('\n')).toBe(true);
  });

  it('JIT_NETWORK=defender with its subscriptions (and the NSG fallback) is accepted', () => {
    const c = loadConfig({ JIT_NETWORK: 'defender', AZURE_SUBSCRIPTION_ID: 'sub1,sub2', JIT_DEFENDER_NSG_FALLBACK: 'true', AZURE_ARM_CA_FILE: '/tmp/ca.pem' });
    expect(c).toMatchObject({ JIT_NETWORK: 'defender', AZURE_SUBSCRIPTION_ID: 'sub1,sub2', JIT_DEFENDER_NSG_FALLBACK: true });
    expect(loadConfig({ JIT_NETWORK: 'defender', AZURE_SUBSCRIPTION_ID: 'sub1' }).JIT_DEFENDER_NSG_FALLBACK).toBe(false);
  });

  it('binding to all interfaces turns the local channel off by default', () => {
    expect(loadConfig({ HOST: '0.0.0.0' }).JIT_LOCAL_CHANNEL).toBe(false);
  });
});
