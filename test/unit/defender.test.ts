// Defender for Cloud's JIT policies as the bot's targets and port rules; finding the bot's requests
// in a policy's `requests`; Defender's own NSG rule for the fallback. Pure.
import { describe, expect, it } from 'vitest';
import { currentPorts, endsEarly, importPolicies, isDefenderAllow, justificationOf, portRuleOf, tagOf, type JitPolicyWire } from '../../src/adapters/azure/defender.js';
import { checkAccess, describePolicy, effectivePolicy, withNetworkPolicies } from '../../src/core/policy.js';
import { ANY } from '../../src/core/source.js';
import { PROD, testBook, vmId } from '../fixtures/book.js';

const POLICY_ID = `${PROD}/providers/Microsoft.Security/locations/westeurope/jitNetworkAccessPolicies/default`;
const policy = (vms: JitPolicyWire['properties']['virtualMachines'], requests: JitPolicyWire['properties']['requests'] = []): JitPolicyWire => ({
  id: POLICY_ID, name: 'default', location: 'westeurope', kind: 'Basic', properties: { virtualMachines: vms, requests, provisioningState: 'Succeeded' },
});

describe('importing Defender\'s JIT policies', () => {
  it('turns each VM into a target and each port into a port rule with Defender\'s protocol, sources and ISO-8601 maximum', () => {
    const { policies, problems } = importPolicies([
      policy([
        { id: vmId(PROD, 'vm1'), ports: [{ number: 3389, protocol: '*', allowedSourceAddressPrefix: '*', maxRequestAccessDuration: 'PT3H' }, { number: 5986, protocol: 'TCP', allowedSourceAddressPrefixes: ['203.0.113.0/24', '198.51.100.7'], maxRequestAccessDuration: 'PT30M' }] },
        { id: vmId(PROD, 'LinuxBox'), ports: [{ number: 22, protocol: 'UDP', maxRequestAccessDuration: 'P1D' }] },
      ]),
    ]);
    expect(problems).toEqual([]);
    expect(policies.source).toBe('defender');
    expect(policies.targets).toEqual([
      {
        target: { name: 'vm1', id: vmId(PROD, 'vm1'), os: 'windows' },
        ports: [
          { port: 3389, protocol: '*', allowedSourcePrefixes: [ANY], maxDurationMs: 3 * 3600_000, exactSources: true },
          { port: 5986, protocol: 'tcp', allowedSourcePrefixes: ['203.0.113.0/24', '198.51.100.7/32'], maxDurationMs: 30 * 60_000, exactSources: true },
        ],
        policy: 'prod/default',
      },
      // No source given is Any; a day is Defender's longest maximum.
      { target: { name: 'LinuxBox', id: vmId(PROD, 'LinuxBox'), os: 'linux' }, ports: [{ port: 22, protocol: 'udp', allowedSourcePrefixes: [ANY], maxDurationMs: 24 * 3600_000, exactSources: true }], policy: 'prod/default' },
    ]);
  });

  it('leaves out a port it cannot read, and a VM named by two policies after the first, saying why', () => {
    const second = { ...policy([{ id: vmId(PROD, 'vm1'), ports: [{ number: 22, protocol: 'TCP', maxRequestAccessDuration: 'PT1H' }] }]), id: POLICY_ID.replace('/default', '/other'), name: 'other' };
    const { policies, problems } = importPolicies([
      policy([{ id: vmId(PROD, 'vm1'), ports: [{ number: 3389, protocol: 'TCP', maxRequestAccessDuration: 'three hours' }, { number: 22, protocol: 'TCP', allowedSourceAddressPrefix: 'not-an-ip', maxRequestAccessDuration: 'PT1H' }] }]),
      second,
    ]);
    expect(policies.targets).toHaveLength(1);
    expect(policies.targets[0]!.ports).toEqual([]);
    expect(problems.join('\n')).toContain('port 3389: maxRequestAccessDuration "three hours" is not an ISO-8601 duration');
    expect(problems.join('\n')).toContain('port 22: allowed source "not-an-ip" is not an address or CIDR');
    expect(problems.join('\n')).toContain('is in more than one JIT policy; the first one (of prod/default, prod/other) is used');
  });

  it('portRuleOf refuses a maximum it cannot read rather than guessing one', () => {
    expect(portRuleOf({ number: 22, protocol: 'TCP', maxRequestAccessDuration: '' })).toMatch(/not an ISO-8601 duration/);
  });
});

describe('merging them over the policy file', () => {
  const book = testBook();
  const imported = importPolicies([
    policy([
      // vm1 is in the file (as vm1): it keeps the file's name, address and OS; Defender's ports replace the file's.
      { id: vmId(PROD, 'VM1'), ports: [{ number: 3389, protocol: 'TCP', allowedSourceAddressPrefixes: ['203.0.113.0/24'], maxRequestAccessDuration: 'PT1H' }] },
      { id: vmId(PROD, 'new1'), ports: [{ number: 22, protocol: '*', allowedSourceAddressPrefix: '*', maxRequestAccessDuration: 'PT2H' }] },
      // A name chat cannot type, and a name the file uses for another VM.
      { id: vmId(PROD, 'bad name!'), ports: [{ number: 22, protocol: '*', maxRequestAccessDuration: 'PT2H' }] },
      { id: `${PROD}/providers/Microsoft.Compute/virtualMachines/db1-elsewhere`.replace('db1-elsewhere', 'dev1'), ports: [{ number: 22, protocol: '*', maxRequestAccessDuration: 'PT2H' }] },
    ]),
  ]).policies;
  const { book: merged, notes } = withNetworkPolicies(book, imported);

  it('adds Defender\'s VMs as targets and gives each Defender\'s ports at its own scope; approvals stay the file\'s', () => {
    expect(merged.targets.new1).toEqual({ name: 'new1', id: vmId(PROD, 'new1'), os: 'linux' });
    expect(merged.targets.vm1).toEqual(book.targets.vm1);
    const vm1 = effectivePolicy(merged, merged.targets.vm1!);
    expect(vm1.ports).toEqual([{ port: 3389, protocol: 'tcp', allowedSourcePrefixes: ['203.0.113.0/24'], maxDurationMs: 3600_000, exactSources: true }]);
    expect(vm1.origin.ports).toBe('defender:prod/default');
    expect(vm1.approval.approvers).toEqual(['group:oncall']);
    expect(describePolicy(vm1).find((l) => l.key === 'port 3389/tcp')!.value).toBe('max 1h, from exactly 203.0.113.0/24');
    // The file's own book is not changed.
    expect(book.targets.new1).toBeUndefined();
    expect(effectivePolicy(book, book.targets.vm1!).ports.map((p) => p.port)).toEqual([3389, 22]);
  });

  it('says what it could not merge, and merges nothing for it', () => {
    expect(notes).toEqual([
      `${vmId(PROD, 'bad name!')}: the VM name "bad name!" cannot be typed in chat; name it under targets in the policy file`,
      `${vmId(PROD, 'dev1')}: the policy file's target "dev1" is another VM (${book.targets.dev1!.id}); name this one under targets in the policy file`,
    ]);
    expect(merged.targets.dev1).toEqual(book.targets.dev1);
    expect(Object.keys(merged.targets).sort()).toEqual([...Object.keys(book.targets), 'new1'].sort());
  });

  it('a source must be one of Defender\'s prefixes as written: a host inside an allowed range is refused, the range itself is accepted', () => {
    const vm1 = effectivePolicy(merged, merged.targets.vm1!);
    const ask = (source: string) => () => checkAccess(vm1, { ports: [{ port: 3389, protocol: 'tcp' }], durationMs: 3600_000, source }, 60_000);
    expect(ask('203.0.113.7/32')).toThrow(/not allowed on vm1 3389\/tcp; allowed sources: 203\.0\.113\.0\/24 \(exactly one of these/);
    expect(ask('203.0.113.0/24')().source).toBe('203.0.113.0/24');
    // Any in Defender's policy allows any source.
    const new1 = effectivePolicy(merged, merged.targets.new1!);
    expect(checkAccess(new1, { ports: [{ port: 22, protocol: 'tcp' }], durationMs: 3600_000, source: '198.51.100.9/32' }, 60_000).source).toBe('198.51.100.9/32');
    // The file's own rules still allow a host inside a range.
    const db1 = effectivePolicy(book, book.targets.db1!);
    expect(checkAccess(db1, { ports: [{ port: 22, protocol: 'tcp' }], durationMs: 1800_000, source: '203.0.113.9/32' }, 60_000).source).toBe('203.0.113.9/32');
  });
});

describe('the bot\'s requests in a policy\'s `requests`', () => {
  it('the justification carries the tag first, then who and why, and is kept short', () => {
    expect(justificationOf('rabc', 'alice@contoso.com', 'INC-4711')).toBe('jit-bot request=rabc for alice@contoso.com: INC-4711');
    expect(tagOf({ justification: justificationOf('rabc', undefined, undefined, 'ended early') })).toBe('rabc');
    expect(endsEarly({ justification: justificationOf('rabc', undefined, undefined, 'ended early') })).toBe(true);
    expect(endsEarly({ justification: justificationOf('rabc', 'alice@contoso.com', '(ended early) in the text') })).toBe(false);
    expect(tagOf({ justification: 'patching, by hand' })).toBeUndefined();
    expect(tagOf({})).toBeUndefined();
    const long = justificationOf('rabc', 'alice@contoso.com', 'x'.repeat(500));
    expect(long.length).toBe(200);
    expect(tagOf({ justification: long })).toBe('rabc');
  });

  it('what Defender holds for a VM port is the latest request naming it', () => {
    const vm = vmId(PROD, 'vm1');
    const req = (start: string, justification: string, status: string) => ({ startTimeUtc: start, justification, requestor: 'bot', virtualMachines: [{ id: vm, ports: [{ number: 3389, endTimeUtc: '2030-01-01T00:00:00Z', status, statusReason: 'UserRequested' }] }] });
    const doc = policy([], [
      req('2030-01-01T00:00:10.0000000Z', 'later', 'Initiated'),
      req('2030-01-01T00:00:00.5000000Z', 'earlier', 'Revoked'),
      { startTimeUtc: '2030-01-01T00:00:20Z', requestor: 'x', virtualMachines: [{ id: vmId(PROD, 'other'), ports: [{ number: 3389, endTimeUtc: '2030-01-01T00:00:00Z', status: 'Initiated', statusReason: 'UserRequested' }] }] },
    ]);
    expect(currentPorts(doc, vm.toUpperCase()).get(3389)!.request.justification).toBe('later');
    expect([...currentPorts(doc, vm).keys()]).toEqual([3389]);
  });
});

describe('Defender\'s own Allow rule (the NSG fallback deletes only that)', () => {
  const ports = [{ number: 3389, source: '203.0.113.7' }];
  const rule = (name: string, props: Record<string, unknown> = {}) => ({
    name,
    properties: { priority: 100, direction: 'Inbound', access: 'Allow', protocol: '*', sourceAddressPrefix: '203.0.113.7', sourcePortRange: '*', destinationAddressPrefix: '10.0.0.4', destinationPortRange: '3389', description: "ASC JIT Network Access rule created by an initiation request for policy 'default' of VM 'vm1'.", ...props },
  });
  it('matches Defender\'s request rule for the VM, port and source', () => {
    expect(isDefenderAllow(rule('SecurityCenter-JITRule-1170687618-8C18BF8921F041989344B4F1E3A0C370'), 'vm1', ['10.0.0.4'], ports)).toBe(true);
    expect(isDefenderAllow(rule('SecurityCenter-JITRule-1-AB', { sourceAddressPrefix: '203.0.113.7/32', destinationAddressPrefix: '10.9.9.9' }), 'vm1', ['10.0.0.4'], ports)).toBe(true);
  });
  it('does not match Defender\'s Deny rules, other ports, other sources, other VMs, or anyone else\'s rule', () => {
    expect(isDefenderAllow(rule('SecurityCenter-JITRule_-1105480617_9EF6964FE766478B9EC568B32FB82045'), 'vm1', ['10.0.0.4'], ports)).toBe(false);
    expect(isDefenderAllow(rule('SecurityCenter-JITRule-1-AB', { destinationPortRange: '22' }), 'vm1', ['10.0.0.4'], ports)).toBe(false);
    expect(isDefenderAllow(rule('SecurityCenter-JITRule-1-AB', { sourceAddressPrefix: '198.51.100.1' }), 'vm1', ['10.0.0.4'], ports)).toBe(false);
    expect(isDefenderAllow(rule('SecurityCenter-JITRule-1-AB', { destinationAddressPrefix: '10.0.0.5', description: "… of VM 'vm2'." }), 'vm1', ['10.0.0.4'], ports)).toBe(false);
    expect(isDefenderAllow(rule('allow-rdp'), 'vm1', ['10.0.0.4'], ports)).toBe(false);
    expect(isDefenderAllow(rule('SecurityCenter-JITRule-1-AB', { direction: 'Outbound' }), 'vm1', ['10.0.0.4'], ports)).toBe(false);
  });
});
