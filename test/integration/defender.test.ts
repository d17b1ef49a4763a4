// JIT_NETWORK=defender through the real service (startJit, Redis, BullMQ) against the ARM
// emulator with the Security API plugin (test/fakes/defender.ts), reached by configuration only
// (AZURE_ARM_ENDPOINT, AZURE_ARM_CA_FILE, AZURE_ACCESS_TOKEN). The emulator holds the bot to the
// Defender role (manifest/azure/jit-bot-defender-role.json): any other call is 403.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DefenderGate } from '../../src/adapters/azure/defender.js';
import { AzureGate } from '../../src/adapters/azure/gate.js';
import type { Reply } from '../../src/core/reply.js';
import type { AccessRequest, AuditEvent } from '../../src/core/types.js';
import { ArmEmulator, actionOf } from '../fakes/arm.js';
import { DefenderEmulator } from '../fakes/defender.js';
import { DEV, PROD, SUB, vmId } from '../fixtures/book.js';
import { requestOf, startHarness, waitFor, type Harness } from './harness.js';
import { p, tn } from '../fixtures/ids.js';

const ROLE = JSON.parse(readFileSync(new URL('../../manifest/azure/jit-bot-defender-role.json', import.meta.url), 'utf8')) as { Actions: string[] };
/** What docs/security.md says JIT_DEFENDER_NSG_FALLBACK adds to the Defender role. */
const FALLBACK_ACTIONS = [
  'Microsoft.Network/networkInterfaces/read',
  'Microsoft.Network/virtualNetworks/subnets/read',
  'Microsoft.Network/networkSecurityGroups/read',
  'Microsoft.Network/networkSecurityGroups/securityRules/delete',
  'Microsoft.Network/locations/operations/read',
];

// The policy file says who may request and who approves; Defender's JIT policies say what opens.
const POLICY = `
principals:
  alice@contoso.com: {}
  bob@contoso.com: {}
  carol@contoso.com: {}
  dave@contoso.com: {}
groups:
  oncall: [bob@contoso.com, carol@contoso.com]
roles:
  - { principal: alice@contoso.com, role: JIT Requester, scope: ${PROD} }
  - { principal: group:oncall,      role: JIT Approver,  scope: ${SUB} }
  - { principal: dave@contoso.com,  role: JIT Admin,     scope: ${SUB} }
targets:
  vm1: { id: ${vmId(PROD, 'vm1')}, os: windows, address: vm1.contoso.example }
policies:
  everything:
    scope: ${SUB}
    ports:
      - { port: 3389, protocol: tcp, allowedSourcePrefixes: ["*"], maxDuration: PT3H }
      - { port: 22, protocol: tcp, allowedSourcePrefixes: ["*"], maxDuration: PT3H }
    approval: { required: true, approvers: [group:oncall], quorum: 1, timeout: PT1H }
`;

let arm: ArmEmulator;
let defender: DefenderEmulator;
let h: Harness;
let policyProd: string;
let vm1: ReturnType<ArmEmulator['standardVm']>;
let db1: ReturnType<ArmEmulator['standardVm']>;
/** One VM per test of early ends and Defender's load: a port ended "a minute from now" stays Defender's for that minute. */
let vm2: ReturnType<ArmEmulator['standardVm']>;
let vm3: ReturnType<ArmEmulator['standardVm']>;
let vm4: ReturnType<ArmEmulator['standardVm']>;
let vm5: ReturnType<ArmEmulator['standardVm']>;
let vm6: ReturnType<ArmEmulator['standardVm']>;

const state = async (id: string): Promise<AccessRequest> => (await h.app.service.get(id))!;
const run = async (as: string, text: string): Promise<Reply> => h.app.service.execute(p(as), text, { via: 'test' });
async function grant(text: string): Promise<string> {
  const id = requestOf(await run('alice@contoso.com', text)).id;
  await run('bob@contoso.com', `approve ${id}`);
  return id;
}
/** The Defender requests the bot made for `id`, in the policy's `requests`. */
function requestsOf(id: string, policy = policyProd) {
  const doc = defender.policy(policy) as { properties: { requests: Array<{ justification?: string; startTimeUtc: string; virtualMachines: Array<{ id: string; ports: Array<{ number: number; endTimeUtc: string; status: string; statusReason: string; allowedSourceAddressPrefix?: string }> }> }> } };
  return doc.properties.requests.filter((r) => r.justification?.startsWith(`jit-bot request=${id}`));
}
const audit = async (id: string): Promise<AuditEvent[]> => h.audit(id);

beforeAll(async () => {
  arm = await new ArmEmulator({ pageSize: 2, roleActions: [...ROLE.Actions, ...FALLBACK_ACTIONS] }).start();
  defender = new DefenderEmulator(arm, { pageSize: 1 });
  vm1 = arm.standardVm('sub1', 'prod', 'vm1', '10.0.0.4');
  db1 = arm.standardVm('sub1', 'prod', 'db1', '10.0.0.5');
  arm.standardVm('sub1', 'prod', 'web1', '10.0.0.6');
  vm2 = arm.standardVm('sub1', 'prod', 'vm2', '10.0.0.7');
  vm3 = arm.standardVm('sub1', 'prod', 'vm3', '10.0.0.8');
  vm4 = arm.standardVm('sub1', 'prod', 'vm4', '10.0.0.9');
  vm5 = arm.standardVm('sub1', 'prod', 'vm5', '10.0.0.10');
  vm6 = arm.standardVm('sub1', 'prod', 'vm6', '10.0.0.11');
  const rdp = (id: string) => ({ id, ports: [{ number: 3389, protocol: '*' as const, allowedSourceAddressPrefix: '*', maxRequestAccessDuration: 'PT2H' }] });
  arm.standardVm('sub1', 'dev', 'dev1', '10.1.0.4');
  policyProd = defender.addPolicy(PROD, [
    { id: vm1.vm, ports: [{ number: 3389, protocol: '*', allowedSourceAddressPrefix: '*', maxRequestAccessDuration: 'PT2H' }] },
    { id: db1.vm, ports: [{ number: 22, protocol: 'TCP', allowedSourceAddressPrefixes: ['203.0.113.0/24', '198.51.100.7'], maxRequestAccessDuration: 'PT1H' }] },
    rdp(vm2.vm),
    rdp(vm3.vm),
    rdp(vm4.vm),
    rdp(vm5.vm),
    rdp(vm6.vm),
  ]);
  defender.addPolicy(DEV, [{ id: vmId(DEV, 'dev1'), ports: [{ number: 22, protocol: 'TCP', allowedSourceAddressPrefix: '*', maxRequestAccessDuration: 'PT3H' }] }], { location: 'northeurope' });
  const dir = mkdtempSync(join(tmpdir(), 'jit-defender-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  h = await startHarness({
    JIT_NETWORK: 'defender',
    JIT_POLICY_FILE: join(dir, 'policy.yaml'),
    AZURE_SUBSCRIPTION_ID: 'sub1',
    AZURE_ARM_ENDPOINT: arm.url,
    AZURE_ARM_CA_FILE: arm.certFile,
    AZURE_ACCESS_TOKEN: 'bot-token',
    AZURE_POLL_INTERVAL_MS: '5',
    AZURE_WRITE_DEADLINE: '3s',
    AZURE_REQUEST_TIMEOUT: '2s',
    // Sweeps run when a test calls reconcile() (a background sweep would take its count).
    JIT_RECONCILE_INTERVAL: '1h',
  });
});

afterAll(async () => {
  await h?.close();
  defender?.close();
  await arm?.close();
});

describe('Defender for Cloud\'s JIT policies are the targets', () => {
  it('vms lists the policies\' VMs as configured (ports from Defender) and the others as not configured', async () => {
    const reply = await run('dave@contoso.com', 'vms');
    if (reply.kind !== 'inventory') throw new Error(JSON.stringify(reply));
    expect(reply.configured.map((c) => [c.name, c.ports]).sort()).toEqual([['db1', '22/tcp'], ['dev1', '22/tcp'], ['vm1', '3389/any'], ['vm2', '3389/any'], ['vm3', '3389/any'], ['vm4', '3389/any'], ['vm5', '3389/any'], ['vm6', '3389/any']]);
    expect(reply.notConfigured.map((c) => c.name)).toEqual(['web1']);
    // vm1 keeps what the policy file says of it (its address); db1 and dev1 come from Defender alone.
    expect(reply.configured.find((c) => c.name === 'vm1')!.address).toBe('vm1.contoso.example');
  });

  it('policy shows Defender\'s ports, maximum durations and sources, and the file\'s approval', async () => {
    const reply = await run('dave@contoso.com', 'policy db1');
    if (reply.kind !== 'policy') throw new Error(JSON.stringify(reply));
    const line = (key: string) => reply.lines.find((l) => l.key === key);
    expect(line('port 22/tcp')).toEqual({ key: 'port 22/tcp', value: 'max 1h, from exactly 203.0.113.0/24, 198.51.100.7/32', from: 'defender:prod/default' });
    expect(reply.lines.some((l) => l.key.startsWith('port 3389'))).toBe(false); // the file's ports do not apply to Defender's VMs
    expect(line('approval.approvers')).toMatchObject({ value: 'group:oncall', from: 'everything' });
    const vm = await run('dave@contoso.com', 'policy vm1');
    if (vm.kind !== 'policy') throw new Error(JSON.stringify(vm));
    expect(vm.lines.find((l) => l.key.startsWith('port '))).toEqual({ key: 'port 3389/any', value: 'max 2h, from any', from: 'defender:prod/default' });
  });

  it('a request outside Defender\'s policy is refused with Defender\'s limits named, and Defender is not asked', async () => {
    const initiates = defender.stats.initiates;
    const port = await run('alice@contoso.com', 'ssh vm1 1h from 203.0.113.7');
    expect(port).toMatchObject({ kind: 'rejected', code: 'port_not_allowed' });
    expect(JSON.stringify(port)).toContain('allowed: 3389/any');
    const long = await run('alice@contoso.com', 'rdp vm1 3h from 203.0.113.7');
    expect(long).toMatchObject({ kind: 'rejected', code: 'duration_too_long' });
    expect(JSON.stringify(long)).toContain('at most 2h');
    // Defender compares sources verbatim: a host inside an allowed range is not one of its prefixes.
    const inside = await run('alice@contoso.com', 'ssh db1 30m from 203.0.113.9');
    expect(inside).toMatchObject({ kind: 'rejected', code: 'source_not_allowed' });
    expect(JSON.stringify(inside)).toContain('203.0.113.0/24, 198.51.100.7/32 (exactly one of these');
    expect(defender.stats.initiates).toBe(initiates);
  });

  it('a change in Defender is picked up on the next refresh', async () => {
    defender.setPorts(policyProd, db1.vm, [{ number: 22, protocol: 'TCP', allowedSourceAddressPrefixes: ['203.0.113.0/24', '198.51.100.7'], maxRequestAccessDuration: 'PT45M' }]);
    try {
      await h.app.service.refreshNetworkPolicies();
      const reply = await run('dave@contoso.com', 'policy db1');
      expect(JSON.stringify(reply)).toContain('max 45m');
    } finally {
      defender.setPorts(policyProd, db1.vm, [{ number: 22, protocol: 'TCP', allowedSourceAddressPrefixes: ['203.0.113.0/24', '198.51.100.7'], maxRequestAccessDuration: 'PT1H' }]);
      await h.app.service.refreshNetworkPolicies();
    }
  });
});

describe('request → approval → initiate → extend → revoke', () => {
  it('opens through Defender\'s initiate, extends by initiating again, revokes by initiating an end of now; the audit holds Defender\'s request ids', async () => {
    const id = requestOf(await run('alice@contoso.com', 'rdp vm1 1h from 203.0.113.7 because patching')).id;
    const before = defender.initiated.length;
    expect(requestsOf(id)).toEqual([]); // nothing asked of Defender before the approval
    await run('bob@contoso.com', `approve ${id}`);
    const active = await state(id);
    expect(active.status).toBe('active');

    // The initiate, on the wire: the VM, the port, the source, endTimeUtc = the grant's expiry, and the tagged justification.
    const first = defender.initiated[before]!;
    expect(first.policy).toBe(policyProd);
    expect(first.body).toEqual({
      virtualMachines: [{ id: vm1.vm, ports: [{ number: 3389, allowedSourceAddressPrefix: '203.0.113.7', endTimeUtc: new Date(active.expiresAt!).toISOString() }] }],
      justification: `jit-bot request=${id} for alice@contoso.com: patching`,
    });
    // Defender wrote its own rule on both NSGs of the path; the bot wrote none.
    expect(defender.openRules(vm1.vm)).toHaveLength(2);
    expect(arm.rules(vm1.nicNsg).filter((r) => r.name.startsWith('jit-'))).toEqual([]);
    expect(requestsOf(id)[0]!.virtualMachines[0]!.ports[0]).toMatchObject({ number: 3389, status: 'Initiated', statusReason: 'UserRequested' });
    const applied = (await audit(id)).filter((e) => e.action === 'rule.applied');
    expect(applied).toHaveLength(1);
    expect(applied[0]!.details).toMatchObject({ rule: `jit-${id}-3389`, scope: policyProd, port: 3389, source: '203.0.113.7/32' });
    expect(String(applied[0]!.details.ref)).toContain(`x-ms-request-id=${first.requestId}`);
    // The connection line is the usual one.
    expect((await h.cmd('alice@contoso.com', `status ${id}`)).text).toContain('mstsc /v:vm1.contoso.example:3389');

    // Extend: Defender is asked again with the later end; the older request is superseded.
    await run('dave@contoso.com', `extend ${id} 30m`);
    const extended = await state(id);
    expect(extended.expiresAt! - active.expiresAt!).toBe(30 * 60_000);
    const second = defender.initiated[before + 1]!;
    expect((second.body.virtualMachines as Array<{ ports: Array<{ endTimeUtc: string }> }>)[0]!.ports[0]!.endTimeUtc).toBe(new Date(extended.expiresAt!).toISOString());
    const reqs = requestsOf(id);
    expect(reqs.map((r) => r.virtualMachines[0]!.ports[0]!.status)).toEqual(['Revoked', 'Initiated']);
    expect(reqs[0]!.virtualMachines[0]!.ports[0]!.statusReason).toBe('NewerRequestInitiated');
    const reapplied = (await audit(id)).filter((e) => e.action === 'rule.applied');
    expect(reapplied).toHaveLength(2);
    expect(String(reapplied[1]!.details.ref)).toContain(`x-ms-request-id=${second.requestId}`);
    expect(defender.openRules(vm1.vm)).toHaveLength(2);

    // Revoke: no revoke in the API; the bot initiates the same port ending now and Defender closes it.
    const t0 = Date.now();
    await run('alice@contoso.com', `revoke ${id}`);
    expect((await state(id)).status).toBe('revoked');
    const third = defender.initiated[before + 2]!;
    const end = Date.parse((third.body.virtualMachines as Array<{ ports: Array<{ endTimeUtc: string }> }>)[0]!.ports[0]!.endTimeUtc);
    expect(end).toBeGreaterThanOrEqual(t0 - 1000);
    expect(end).toBeLessThanOrEqual(Date.now());
    expect(third.body.justification).toBe(`jit-bot request=${id} (ended early)`);
    await waitFor('Defender closed the port', async () => defender.openRules(vm1.vm).length === 0 || null);
    const removed = (await audit(id)).filter((e) => e.action === 'rule.removed');
    expect(removed).toHaveLength(1);
    expect(String(removed[0]!.details.ref)).toContain(`x-ms-request-id=${third.requestId}`);
    expect(String(removed[0]!.details.ref)).toContain('ends the grant early');
    // Nothing of it is left for the reconciler.
    expect(await h.app.service.reconcile()).toBe(0);
  });

  it('at expiry Defender closes the port by itself; the bot asks Defender nothing more', async () => {
    const id = await grant('rdp vm1 3s from 203.0.113.8');
    expect((await state(id)).status).toBe('active');
    const initiates = defender.stats.initiates;
    expect(defender.openRules(vm1.vm)).toHaveLength(2);
    await waitFor('expired', async () => (await state(id)).status === 'expired' || null, 15_000);
    await waitFor('Defender closed the port', async () => defender.openRules(vm1.vm).length === 0 || null);
    expect(requestsOf(id)[0]!.virtualMachines[0]!.ports[0]).toMatchObject({ status: 'Revoked', statusReason: 'Expired' });
    expect(defender.stats.initiates).toBe(initiates);
  });

  it('a source from Defender\'s list is sent as Defender wrote it', async () => {
    const id = await grant('ssh db1 30m from 198.51.100.7');
    expect((await state(id)).status).toBe('active');
    const sent = defender.initiated.at(-1)!.body.virtualMachines as Array<{ ports: Array<{ allowedSourceAddressPrefix: string }> }>;
    expect(sent[0]!.ports[0]!.allowedSourceAddressPrefix).toBe('198.51.100.7');
    await run('alice@contoso.com', `revoke ${id}`);
    await waitFor('closed', async () => defender.openRules(db1.vm).length === 0 || null);
  });
});

describe('what the API offers for an early end, and what the bot then does', () => {
  it('Defender refusing an end of now: the bot asks for now + 1 minute', async () => {
    const id = await grant('rdp vm2 1h from 203.0.113.20');
    defender.minEndMs = 30_000;
    try {
      const refused = defender.stats.refused;
      const t0 = Date.now();
      await run('alice@contoso.com', `revoke ${id}`);
      expect(defender.stats.refused - refused).toBe(1);
      const last = requestsOf(id).at(-1)!;
      expect(last.justification).toBe(`jit-bot request=${id} (ended early, +1 min)`);
      const end = Date.parse(last.virtualMachines[0]!.ports[0]!.endTimeUtc);
      expect(end - t0).toBeGreaterThanOrEqual(59_000);
      expect(end - t0).toBeLessThanOrEqual(61_000 + (Date.now() - t0));
      const removed = (await audit(id)).filter((e) => e.action === 'rule.removed');
      expect(String(removed[0]!.details.ref)).toContain('ends the grant early');
      // That request is Defender's to end a minute from now: the reconciler does not ask again
      // (asking again "a minute from now" on every sweep would keep the port open for ever).
      const initiates = defender.stats.initiates;
      expect(await h.app.service.reconcile()).toBe(0);
      expect(defender.stats.initiates).toBe(initiates);
    } finally {
      defender.minEndMs = undefined;
    }
  });

  it('Defender refusing both: without the NSG fallback the revoke says so and the port stays open until Defender\'s end', async () => {
    const id = await grant('rdp vm3 1h from 203.0.113.21');
    defender.minEndMs = 120_000;
    try {
      // Whoever revoked is told: revoked, but Defender keeps the port open until its end time.
      const reply = await run('alice@contoso.com', `revoke ${id}`);
      expect(reply).toMatchObject({ kind: 'rejected', code: 'network' });
      expect(JSON.stringify(reply)).toMatch(/would not end vm3 port 3389 early; it closes at Defender's end time .*JIT_DEFENDER_NSG_FALLBACK/);
      expect((await state(id)).status).toBe('revoked');
      expect(defender.openRules(vm3.vm)).toHaveLength(2);
      // The reconciler keeps asking (and keeps being refused) rather than forgetting the port.
      await expect(h.app.service.reconcile()).rejects.toThrow(/would not end/);
    } finally {
      defender.minEndMs = undefined;
    }
    // Once Defender accepts again, the next sweep ends it.
    expect(await h.app.service.reconcile()).toBe(1);
    await waitFor('closed', async () => defender.openRules(vm3.vm).length === 0 || null);
  });

  it('Defender refusing both, with the NSG fallback: Defender\'s own Allow rules are deleted from the VM\'s NSGs', async () => {
    const token = { getToken: async () => ({ token: 'fallback-token', expiresOnTimestamp: Date.now() + 3600_000 }) };
    const common = { credential: token, endpoint: arm.url, caCert: readFileSync(arm.certFile, 'utf8'), pollIntervalMs: 5, writeDeadlineMs: 3000 };
    const gate = new DefenderGate({ ...common, subscriptions: ['sub1'], nsgFallback: new AzureGate({ ...common, targets: () => [] }) });
    const target = { name: tn('vm4'), id: vm4.vm, os: 'windows' as const };
    const foreign = { name: 'allow-bastion', properties: { priority: 300, direction: 'Inbound' as const, access: 'Allow' as const, protocol: 'Tcp', sourceAddressPrefix: '10.10.0.0/24', sourcePortRange: '*', destinationAddressPrefix: '*', destinationPortRange: '3389' } };
    arm.addForeignRule(vm4.nicNsg, foreign);
    const rules = await gate.open({ requestId: 'rfallback01', target, ports: [{ port: 3389, protocol: 'tcp' }], sourcePrefix: '203.0.113.22/32', expiresAt: Date.now() + 3600_000 });
    expect(defender.openRules(vm4.vm)).toHaveLength(2);
    defender.minEndMs = 120_000;
    try {
      const closed = await gate.close('rfallback01', target, rules);
      expect(closed).toHaveLength(1);
      expect(closed[0]!.ref).toMatch(/^NSG fallback \(Defender refused an early end: BadRequest\): deleted vm4-nsg\/SecurityCenter-JITRule-.*, prod-subnet-nsg\/SecurityCenter-JITRule-/);
    } finally {
      defender.minEndMs = undefined;
    }
    expect(defender.openRules(vm4.vm)).toEqual([]);
    // Only Defender's rule for that VM, port and source went; someone else's rule on the port stays.
    expect(arm.rules(vm4.nicNsg).map((r) => r.name)).toContain('allow-bastion');
    arm.removeRule(vm4.nicNsg, 'allow-bastion');
    // Defender still shows its request Initiated (only its rule went); this gate does not ask
    // Defender about it again until Defender's own end time…
    expect(await gate.list()).toEqual([]);
    // …(the harness's gate is another process's view: end the request there too, now that Defender accepts).
    expect(await gate.close('rfallback01', target, rules)).toHaveLength(1);
  });
});

describe('Defender under load and in use', () => {
  it('429 on initiate is waited out for Retry-After; a 503 is retried; the grant opens', async () => {
    defender.failNextInitiate({ status: 429, code: 'TooManyRequests', headers: { 'retry-after': '1' } }, { status: 503, code: 'ServiceUnavailable' });
    const t0 = Date.now();
    const id = await grant('rdp vm5 1h from 203.0.113.30');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect((await state(id)).status).toBe('active');
    await run('alice@contoso.com', `revoke ${id}`);
    await waitFor('closed', async () => defender.openRules(vm5.vm).length === 0 || null);
  });

  it('a port another Defender request holds is not taken over: the grant fails saying whose and until when', async () => {
    const until = Date.now() + 3600_000;
    defender.initiateAsPortal(policyProd, vm1.vm, 3389, '*', until);
    await waitFor('portal request applied', async () => defender.openRules(vm1.vm).length === 2 || null);
    const initiates = defender.stats.initiates;
    const id = await grant('rdp vm1 1h from 203.0.113.31');
    const req = await state(id);
    expect(req.status).toBe('failed');
    expect(req.statusReason).toMatch(/vm1 port 3389 is open in Defender for Cloud until \d\d:\d\d UTC for a request made in Defender by someone@contoso.com/);
    expect(defender.stats.initiates).toBe(initiates);
    // The portal's request is untouched (closing the failed grant asks Defender nothing).
    expect(defender.openRules(vm1.vm)).toHaveLength(2);
    defender.initiateAsPortal(policyProd, vm1.vm, 3389, '*', Date.now() - 1000);
    await waitFor('portal request ended', async () => defender.openRules(vm1.vm).length === 0 || null);
  });

  it('an extension Defender did not take (its initiate refused) is asked again by the reconciler with the grant\'s expiry', async () => {
    const id = await grant('rdp vm6 30m from 203.0.113.50');
    defender.failNextInitiate({ status: 400, code: 'BadRequest', headers: {} });
    await run('dave@contoso.com', `extend ${id} 30m`);
    const extended = await state(id);
    // The grant is extended in the bot; Defender still ends it at the old time…
    const before = requestsOf(id).at(-1)!.virtualMachines[0]!.ports[0]!;
    expect(Date.parse(before.endTimeUtc)).toBe(extended.expiresAt! - 30 * 60_000);
    // …until the next sweep asks again with the stored expiry.
    expect(await h.app.service.reconcile()).toBe(0);
    const after = requestsOf(id).at(-1)!.virtualMachines[0]!.ports[0]!;
    expect(Date.parse(after.endTimeUtc)).toBe(extended.expiresAt!);
    expect(after.status).toBe('Initiated');
    const repaired = (await audit(id)).filter((e) => e.action === 'rule.applied').at(-1)!;
    expect(repaired.actor).toBe('reconciler');
    expect(String(repaired.details.ref)).toContain(`endTimeUtc=${new Date(extended.expiresAt!).toISOString()}`);
    await run('alice@contoso.com', `revoke ${id}`);
    await waitFor('closed', async () => defender.openRules(vm6.vm).length === 0 || null);
  });

  it('the reconciler ends a request the bot initiated whose grant Redis does not know, and audits Defender\'s answer', async () => {
    const target = h.app.service.policyBook().targets.vm1!;
    await h.app.gate.open({ requestId: 'rorphan0001', target, ports: [{ port: 3389, protocol: 'tcp' }], sourcePrefix: '203.0.113.40/32', expiresAt: Date.now() + 3600_000 });
    expect(defender.openRules(vm1.vm)).toHaveLength(2);
    expect(await h.app.service.reconcile()).toBe(1);
    await waitFor('closed', async () => defender.openRules(vm1.vm).length === 0 || null);
    const events = await audit('rorphan0001');
    expect(events.map((e) => e.action)).toEqual(['rule.reconciled']);
    expect(String(events[0]!.details.ref)).toMatch(/^initiate x-ms-request-id=[0-9a-f-]{36} /);
  });

  it('least privilege: every call the bot made is an action of the Defender role, and the role is exactly what the mode needs', async () => {
    const bot = arm.calls.filter((c) => c.token === 'bot-token');
    expect(bot.length).toBeGreaterThan(10);
    const needed = new Set(bot.map((c) => defender.actionOf(c.method, c.path) ?? actionOf(c.method, c.path)));
    const role = new Set(ROLE.Actions.map((a) => a.toLowerCase()));
    for (const a of needed) expect(role, a).toContain(a);
    expect([...role].sort()).toEqual([...needed].sort());
    expect(ROLE.Actions.filter((a) => a.startsWith('Microsoft.Security/'))).toEqual([
      'Microsoft.Security/locations/jitNetworkAccessPolicies/read',
      'Microsoft.Security/locations/jitNetworkAccessPolicies/initiate/action',
    ]);
  });
});
