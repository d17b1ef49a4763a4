import { describe, expect, it } from 'vitest';
import { JitError } from '../../src/core/errors.js';
import { parseCommand, tokenize } from '../../src/core/parse.js';

const H = 3_600_000;
const M = 60_000;

describe('parseCommand: the grammar every platform shares', () => {
  it.each([
    ['rdp vm1 2h', { kind: 'access', verb: 'rdp', ports: [{ port: 3389, protocol: 'tcp' }], target: 'vm1', durationMs: 2 * H }],
    ['/jit rdp vm1 2h', { kind: 'access', verb: 'rdp', target: 'vm1', durationMs: 2 * H }],
    ['jit RDP VM1 90m', { kind: 'access', verb: 'rdp', target: 'vm1', durationMs: 90 * M }],
    ['ssh vm1 30m from 203.0.113.7', { kind: 'access', verb: 'ssh', ports: [{ port: 22, protocol: 'tcp' }], durationMs: 30 * M, source: '203.0.113.7' }],
    [
      'ssh vm1 1h from 203.0.113.0/28 reason "INC-4711 disk full"',
      { kind: 'access', verb: 'ssh', durationMs: H, source: '203.0.113.0/28', justification: 'INC-4711 disk full' },
    ],
    ['ssh vm1 1h reason "INC-4711 disk full" from 203.0.113.7', { source: '203.0.113.7', justification: 'INC-4711 disk full' }],
    ['ssh vm1 1h reason \u201cINC-1 smart quotes\u201d', { justification: 'INC-1 smart quotes' }],
    ['ssh vm1 1h reason disk full from 203.0.113.7', { justification: 'disk full', source: '203.0.113.7' }],
    ['port 8443/tcp vm1 45m', { kind: 'access', verb: 'port', ports: [{ port: 8443, protocol: 'tcp' }], target: 'vm1', durationMs: 45 * M }],
    ['port 8443 vm1 45m', { ports: [{ port: 8443, protocol: 'tcp' }] }],
    ['port 53/udp,8443 vm1 45m', { ports: [{ port: 53, protocol: 'udp' }, { port: 8443, protocol: 'tcp' }] }],
    ['winrm vm1 PT2H', { verb: 'winrm', ports: [{ port: 5985, protocol: 'tcp' }, { port: 5986, protocol: 'tcp' }], durationMs: 2 * H }],
    ['rdp vm1 1h30m', { durationMs: 90 * M }],
    ['rdp vm1 P0DT1H', { durationMs: H }],
    ['ssh vm1 1h from any', { source: 'any' }],
    ['ssh vm1 1h at 14:00 from 203.0.113.7', { startAt: '14:00', source: '203.0.113.7' }],
    ['ssh vm1 1h reason INC-1 at 2026-11-25T14:00Z', { startAt: '2026-11-25T14:00Z', justification: 'INC-1' }],
    ['ssh db-1.prod 1h', { target: 'db-1.prod' }],
    ['list', { kind: 'list', scope: 'mine' }],
    ['list pending', { kind: 'list', scope: 'pending' }],
    ['LIST all', { kind: 'list', scope: 'all' }],
    ['status r7k2m9q4xw', { kind: 'status', requestId: 'r7k2m9q4xw' }],
    ['status R7K2M9Q4XW', { kind: 'status', requestId: 'r7k2m9q4xw' }],
    ['revoke r7k2m9q4xw', { kind: 'revoke', requestId: 'r7k2m9q4xw' }],
    ['cancel r7k2m9q4xw', { kind: 'revoke', requestId: 'r7k2m9q4xw' }],
    ['extend r7k2m9q4xw 1h', { kind: 'extend', requestId: 'r7k2m9q4xw', durationMs: H }],
    ['approve r7k2m9q4xw', { kind: 'approve', requestId: 'r7k2m9q4xw' }],
    ['deny r7k2m9q4xw', { kind: 'deny', requestId: 'r7k2m9q4xw' }],
    ['deny r7k2m9q4xw reason "not in a change window"', { kind: 'deny', reason: 'not in a change window' }],
    ['deny r7k2m9q4xw not now', { kind: 'deny', reason: 'not now' }],
    ['help', { kind: 'help' }],
    ['?', { kind: 'help' }],
    ['', { kind: 'help' }],
    ['/jit', { kind: 'help' }],
    ['   rdp    vm1   2h   ', { kind: 'access', target: 'vm1', durationMs: 2 * H }],
  ])('%j parses', (input, expected) => {
    expect(parseCommand(input)).toMatchObject(expected);
  });

  // Every rejection: the typed code, a message that says what was wrong, and (where one exists)
  // a ready-to-type example.
  const malformed: [input: string, code: string, message: RegExp, example?: string][] = [
    ['rpd vm1 2h', 'unknown_command', /unknown command "rpd"; did you mean rdp\?/, 'rdp vm1 2h'],
    ['shh vm1 2h', 'unknown_command', /did you mean ssh\?/, 'ssh vm1 30m from 203.0.113.7'],
    ['statsu r7k2m9q4xw', 'unknown_command', /did you mean status\?/],
    ['open the door', 'unknown_command', /unknown command "open"; commands: rdp, ssh/, 'help'],
    ['rdp', 'parse', /rdp needs a VM name and a duration/, 'rdp vm1 2h'],
    ['rdp vm1', 'parse', /rdp needs a duration after the VM name/, 'rdp vm1 1h'],
    ['rdp 2h', 'parse', /needs a VM name before the duration/, 'rdp vm1 2h'],
    ['rdp 2h vm1', 'parse', /the VM name comes before the duration/, 'rdp vm1 2h'],
    ['ssh 30m vm1 from 203.0.113.7', 'parse', /the VM name comes before the duration/, 'ssh vm1 30m'],
    ['rdp vm_1! 2h', 'parse', /"vm_1!" is not a VM name/, 'rdp vm1 2h'],
    ['rdp ../../etc 2h', 'parse', /is not a VM name/],
    ['rdp vm1 2x', 'bad_duration', /unknown unit "x"/, 'rdp vm1 1h'],
    ['rdp vm1 90', 'bad_duration', /"90" has no unit/, 'rdp vm1 90m'],
    ['rdp vm1 0m', 'bad_duration', /"0m" is zero/],
    ['rdp vm1 -2h', 'bad_duration', /not a duration/],
    ['rdp vm1 2w', 'bad_duration', /too long for a JIT grant/],
    ['rdp vm1 P1M', 'bad_duration', /years, months or weeks/],
    ['rdp vm1 PT', 'bad_duration', /not an ISO-8601 duration/],
    ['rdp vm1 30m2h', 'bad_duration', /largest first/],
    ['rdp vm1 9999h', 'bad_duration', /longer than 7 days/],
    ['ssh vm1 1h from', 'parse', /"from" needs an address or range/, 'ssh vm1 1h from 203.0.113.7'],
    ['ssh vm1 1h from reason x', 'parse', /"from" needs an address or range/],
    ['ssh vm1 1h from 203.0.113.7 from 198.51.100.1', 'parse', /"from" is given twice/],
    ['ssh vm1 1h from 300.1.1.1', 'bad_source', /not a full IPv4 address/, 'ssh vm1 1h from 203.0.113.7'],
    ['ssh vm1 1h from 203.0.113.7/24', 'bad_source', /host bits set; the \/24 range it falls in is 203\.0\.113\.0\/24/],
    ['ssh vm1 1h from 203.0.113.0/33', 'bad_source', /bad prefix length "\/33"/],
    ['ssh vm1 1h from 010.0.0.1', 'bad_source', /leading zero/],
    ['ssh vm1 1h from my-laptop', 'bad_source', /not an IP address or CIDR range/],
    ['ssh vm1 1h frm 203.0.113.7', 'parse', /unexpected "frm"; did you mean from\?/],
    ['ssh vm1 1h please', 'parse', /unexpected "please"; after the duration come "from <address>" and "reason <text>"/],
    ['ssh vm1 1h reason', 'parse', /"reason" needs some text/],
    ['ssh vm1 1h at 2pm', 'parse', /"at" needs a start time: HH:MM/, 'ssh vm1 1h at 14:00'],
    ['ssh vm1 1h at 14:00 at 15:00', 'parse', /"at" is given twice/],
    ['ssh vm1 1h reason "unterminated', 'parse', /a quote \(\"\) is not closed/],
    [`ssh vm1 1h reason "${'x'.repeat(501)}"`, 'parse', /the reason is 501 characters; at most 500/],
    ['ssh vm1 1h reason "a" reason "b"', 'parse', /"reason" is given twice/],
    ['port vm1 45m', 'bad_port', /port needs a port number before the VM name/, 'port 8443/tcp vm1 45m'],
    ['port', 'parse', /port needs a port/],
    ['port 99999/tcp vm1 45m', 'bad_port', /99999 is not a port; ports are 1-65535/],
    ['port 0 vm1 45m', 'bad_port', /0 is not a port/],
    ['port 8443/icmp vm1 45m', 'bad_port', /"8443\/icmp" is not a port; write 8443, 8443\/tcp or 8443\/udp/],
    ['port 8443,8443 vm1 45m', 'bad_port', /listed twice/],
    ['list bogus', 'parse', /list shows mine, pending, active, all, not "bogus"/, 'list pending'],
    ['list all now', 'parse', /unexpected "now" after list/],
    ['status', 'parse', /status needs a request id/],
    ['status 123', 'parse', /"123" is not a request id; ids look like r7k2m9q4xw/, 'list'],
    ['revoke r7k2m9q4xw now', 'parse', /unexpected "now" after revoke/],
    ['approve *', 'parse', /"\*" is not a request id/],
    ['extend r7k2m9q4xw', 'parse', /extend needs a request id and how much longer/, 'extend r7k2m9q4xw 1h'],
    ['extend r7k2m9q4xw forever', 'bad_duration', /not a duration/, 'extend r7k2m9q4xw 1h'],
    ['deny', 'parse', /deny needs a request id/],
    ['rdp vm1 2h\u0007', 'parse', /control characters/],
    ['rdp ' + 'a'.repeat(2100), 'parse', /too long/],
  ];

  it('has at least 30 malformed inputs in its table', () => {
    expect(malformed.length).toBeGreaterThanOrEqual(30);
  });

  it.each(malformed)('%j is refused: %s', (input, code, message, example) => {
    let err: unknown;
    try {
      parseCommand(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(JitError);
    const je = err as JitError;
    expect(je.code).toBe(code);
    expect(je.message).toMatch(message);
    if (example !== undefined) {
      expect(je.example).toBe(example);
      // The example itself is valid grammar: what we tell people to type must parse.
      expect(() => parseCommand(example)).not.toThrow();
    }
  });

  it('every example in a rejection parses (users copy them)', () => {
    for (const [input] of malformed) {
      try {
        parseCommand(input);
      } catch (e) {
        const ex = (e as JitError).example;
        if (ex) expect(() => parseCommand(ex), `example for ${JSON.stringify(input)}: ${ex}`).not.toThrow();
      }
    }
  });

  it('format() puts the platform prefix before the example', () => {
    try {
      parseCommand('rdp 2h vm1');
    } catch (e) {
      expect((e as JitError).format('/jit')).toBe('the VM name comes before the duration; try /jit rdp vm1 2h');
      expect((e as JitError).format('jit')).toBe('the VM name comes before the duration; try jit rdp vm1 2h');
    }
    expect.assertions(2);
  });
});

describe('tokenize', () => {
  it('groups quoted words and keeps empty quotes as a token', () => {
    expect(tokenize(`reason "a b" 'c d' \u201ce f\u201d ""`).map((t) => t.text)).toEqual(['reason', 'a b', 'c d', 'e f', '']);
  });
});

describe('policy enable / disable', () => {
  it('parses a VM and optional ports; disable takes only a VM', () => {
    expect(parseCommand('policy enable vm1')).toEqual({ kind: 'policy_enable', target: 'vm1' });
    expect(parseCommand('jit policy enable VM1 3389 22/tcp 53/udp')).toEqual({
      kind: 'policy_enable', target: 'vm1', ports: [{ port: 3389, protocol: 'tcp' }, { port: 22, protocol: 'tcp' }, { port: 53, protocol: 'udp' }],
    });
    expect(parseCommand('policy disable vm1')).toEqual({ kind: 'policy_disable', target: 'vm1' });
  });

  it('refuses what it cannot read, with an example', () => {
    for (const bad of ['policy', 'policy open vm1', 'policy enable', 'policy disable vm1 22', 'policy enable vm1 99999']) {
      expect(() => parseCommand(bad), bad).toThrow();
    }
    expect(() => parseCommand('polcy enable vm1')).toThrow(/did you mean policy/);
  });
});
