// JIT_NETWORK=azure against the ARM emulator (HTTPS on 127.0.0.1), reached by configuration only:
// AZURE_ARM_ENDPOINT, AZURE_ARM_CA_FILE, AZURE_ACCESS_TOKEN. Real Redis and BullMQ.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_POLICY_YAML } from '../fixtures/book.js';
import { AzureGate } from '../../src/adapters/azure/gate.js';
import type { AccessRequest } from '../../src/core/types.js';
import { ArmEmulator, NO_ACTION, actionOf, type ArmRule } from '../fakes/arm.js';
import { requestOf, startHarness, waitFor, type Harness } from './harness.js';
import { tn } from '../fixtures/ids.js';

let arm: ArmEmulator;
let h: Harness;
let vm1: ReturnType<ArmEmulator['standardVm']>;
let db1: ReturnType<ArmEmulator['standardVm']>;
let app1: ReturnType<ArmEmulator['standardVm']>;
let q2: ReturnType<ArmEmulator['standardVm']>;
let gone1: ReturnType<ArmEmulator['standardVm']>;
let moved1: ReturnType<ArmEmulator['standardVm']>;
let dual1: ReturnType<ArmEmulator['standardVm']>;
let full1: ReturnType<ArmEmulator['standardVm']>;
let portal1Nsg: string;
let ssNsg: string;
let long1: ReturnType<ArmEmulator['standardVm']>;
const LONG = 'loooooooooooooooooooooooooooooooooooooooooooooooooooooongname1';
const HUB = '/subscriptions/sub1/resourceGroups/hub/providers/Microsoft.Network';
const FW = `${HUB}/azureFirewalls/hub-fw`;
/** The firewall the policy is attached to. */
const FW2 = `${HUB}/azureFirewalls/hub-fw2`;
const POLICY_ID = `${HUB}/firewallPolicies/hub-policy`;
const RCG = `${POLICY_ID}/ruleCollectionGroups/jit`;
const POLICY = TEST_POLICY_YAML.replace('virtualMachines/quorum2, os: linux }', 'virtualMachines/quorum2, os: linux, enforce: true }').replace(
  'targets:\n',
  `targets:
  app1:
    id: /subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/app1
    os: linux
    user: azureuser
    firewall: { firewall: ${FW}, publicIp: 20.50.60.70, ports: 50000-50001, subnet: 10.100.0.0/26 }
  app2:
    id: /subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/app2
    os: windows
    firewall: { policy: ${POLICY_ID}, ruleCollectionGroup: jit, publicIp: 20.50.60.71, ports: 51000-51099, subnet: 10.100.0.0/26 }
  gone1: { id: /subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/gone1, os: linux }
  moved1: { id: /subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/moved1, os: linux }
  ss1-0: { id: /subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachineScaleSets/ss1/virtualMachines/0, os: linux }
  portal1: { id: /subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/portal1, os: windows }
  dual1: { id: /subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/dual1, os: linux }
  full1: { id: /subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/full1, os: linux }
  loooooooooooooooooooooooooooooooooooooooooooooooooooooongname1: { id: /subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/long1, os: windows }
  prim1:
    id: /subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/prim1
    os: linux
    firewall: { firewall: ${FW}, publicIp: 20.50.60.70, ports: 50010-50011, subnet: 10.100.0.0/26 }
  fwbad1:
    id: /subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/fwbad1
    os: linux
    firewall: { firewall: ${FW}, publicIp: 198.51.100.99, ports: 50020-50021, subnet: 10.100.0.0/26 }
`,
);

const ours = (nsg: string, id: string) => arm.rules(nsg).filter((r) => r.name.startsWith(`jit-${id}-`));
const state = async (id: string): Promise<AccessRequest> => (await h.app.service.get(id))!;
const gate = () => h.app.gate as AzureGate;
/** GET /metrics as `name{labels}` → value. */
async function scrape(): Promise<Map<string, number>> {
  const text = await (await fetch(`${h.app.url}/metrics`)).text();
  return new Map(text.split('\n').flatMap((l) => {
    const m = /^(\S+) (\S+)$/.exec(l);
    return m && !l.startsWith('#') ? [[m[1]!, Number(m[2])] as const] : [];
  }));
}

async function grant(text: string, approver = 'bob@contoso.com'): Promise<string> {
  const id = requestOf((await h.cmd('alice@contoso.com', text)).reply).id;
  await h.cmd(approver, `approve ${id}`);
  return id;
}

beforeAll(async () => {
  // Small pages: every list the adapter makes must follow nextLink, every Resource Graph query its
  // $skipToken. Resource Graph's quota is the documented 15 queries, per 1 s instead of 5 s.
  arm = await new ArmEmulator({ pageSize: 4, graphPageSize: 5, graphQuota: { queries: 15, windowMs: 1000 } }).start();
  vm1 = arm.standardVm('sub1', 'prod', 'vm1', '10.0.0.4');
  db1 = arm.standardVm('sub1', 'prod', 'db1', '10.0.0.5');
  q2 = arm.standardVm('sub1', 'prod', 'quorum2', '10.0.0.6');
  app1 = arm.standardVm('sub1', 'prod', 'app1', '10.0.0.7');
  arm.standardVm('sub1', 'prod', 'app2', '10.0.0.8');
  gone1 = arm.standardVm('sub1', 'prod', 'gone1', '10.0.0.9');
  moved1 = arm.standardVm('sub1', 'prod', 'moved1', '10.0.0.10');
  dual1 = arm.standardVm('sub1', 'prod', 'dual1', ['10.0.0.12', 'fd00::12']);
  full1 = arm.standardVm('sub1', 'prod', 'full1', '10.0.0.13');
  ssNsg = arm.addNsg('/subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Network/networkSecurityGroups/ss1-nsg');
  arm.addScaleSet('/subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachineScaleSets/ss1', ['10.0.0.50', '10.0.0.51'], vm1.subnet, ssNsg);
  {
    // portal1: only a NIC NSG (its subnet has none), where someone added the portal's "RDP from Any".
    const base = '/subscriptions/sub1/resourceGroups/prod/providers';
    const subnet = arm.addSubnet(`${base}/Microsoft.Network/virtualNetworks/open-vnet/subnets/default`, '10.8.0.0/24');
    portal1Nsg = arm.addNsg(`${base}/Microsoft.Network/networkSecurityGroups/portal1-nsg`);
    arm.addVm(`${base}/Microsoft.Compute/virtualMachines/portal1`, [arm.addNic(`${base}/Microsoft.Network/networkInterfaces/portal1-nic`, [{ ip: '10.8.0.4', subnet }], portal1Nsg)]);
    arm.addForeignRule(portal1Nsg, { name: 'RDP', properties: { priority: 300, direction: 'Inbound', access: 'Allow', protocol: 'TCP', sourceAddressPrefix: '*', sourcePortRange: '*', destinationAddressPrefix: '*', destinationPortRange: '3389' } });
  }
  long1 = arm.standardVm('sub1', 'prod', 'long1', '10.0.0.14');
  arm.standardVm('sub1', 'prod', 'fwbad1', '10.0.0.15');
  {
    // prim1: two NICs, the second one primary (DNAT must translate to its primary address).
    const base = '/subscriptions/sub1/resourceGroups/prod/providers';
    const a = arm.standardVm('sub1', 'prod', 'prim1', '10.0.0.16');
    const nsg = arm.addNsg(`${base}/Microsoft.Network/networkSecurityGroups/prim1-b-nsg`);
    const nicB = arm.addNic(`${base}/Microsoft.Network/networkInterfaces/prim1-b-nic`, [{ ip: '10.0.0.17', subnet: a.subnet }, { ip: '10.0.0.18', subnet: a.subnet }], nsg);
    arm.addVm(a.vm, [a.nic, nicB], 'westeurope', 1);
  }
  arm.addFirewall(FW, '20.50.60.70');
  arm.addFirewall(FW2, '20.50.60.71');
  arm.addFirewallPolicy(POLICY_ID, [FW2]);
  const dir = mkdtempSync(join(tmpdir(), 'jit-azure-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  // quick1: a VM whose NIC and subnet have no NSG at all (Azure JIT calls it Unsupported).
  const base = '/subscriptions/sub1/resourceGroups/prod/providers';
  const bare = arm.addSubnet(`${base}/Microsoft.Network/virtualNetworks/bare-vnet/subnets/default`, '10.9.0.0/24');
  arm.addVm(`${base}/Microsoft.Compute/virtualMachines/quick1`, [arm.addNic(`${base}/Microsoft.Network/networkInterfaces/quick1-nic`, [{ ip: '10.9.0.4', subnet: bare }])]);
  h = await startHarness({
    JIT_NETWORK: 'azure',
    JIT_POLICY_FILE: join(dir, 'policy.yaml'),
    AZURE_ARM_ENDPOINT: arm.url,
    AZURE_ARM_CA_FILE: arm.certFile,
    AZURE_ACCESS_TOKEN: 'emulator-token',
    AZURE_POLL_INTERVAL_MS: '5',
    AZURE_WRITE_DEADLINE: '3s',
    AZURE_REQUEST_TIMEOUT: '1s',
    AZURE_SCOPE_SWEEP_INTERVAL: '0',
    // The least-privilege role's writes: child rules only (JIT_NSG_WRITES=auto is azure-batched.test.ts's).
    JIT_NSG_WRITES: 'rules',
  });
});

afterAll(async () => {
  await h?.close();
  await arm?.close();
});

describe('grants on real NSG rules (emulated ARM)', () => {
  it('opens an Allow rule on the NIC NSG and the subnet NSG, and closes both at expiry', async () => {
    const id = await grant('rdp vm1 3s from 203.0.113.7');
    expect((await state(id)).status).toBe('active');
    for (const nsg of [vm1.nicNsg, vm1.subnetNsg]) {
      const [rule, ...more] = ours(nsg, id);
      expect(more).toEqual([]);
      expect(rule!.name).toBe(`jit-${id}-3389`);
      expect(rule!.properties).toMatchObject({
        direction: 'Inbound', access: 'Allow', protocol: 'Tcp', sourceAddressPrefix: '203.0.113.7/32',
        destinationAddressPrefix: '10.0.0.4', destinationPortRange: '3389',
      });
      expect(rule!.properties.priority).toBeGreaterThanOrEqual(100);
      expect(rule!.properties.priority).toBeLessThanOrEqual(199);
      expect(rule!.properties.description).toBe(`jit-bot request=${id} expires=${new Date((await state(id)).expiresAt!).toISOString()}`);
    }
    // The connection details name the VM's address from the policy.
    const status = await h.cmd('alice@contoso.com', `status ${id}`);
    expect(status.text).toContain('mstsc /v:vm1.contoso.example:3389');
    await waitFor('closed at expiry', async () => ours(vm1.nicNsg, id).length + ours(vm1.subnetNsg, id).length === 0 || null, 15_000);
    expect((await state(id)).status).toBe('expired');
  });

  it('picks a free priority next to rules others wrote, and never touches those rules', async () => {
    const foreign: ArmRule = { name: 'allow-bastion', properties: { priority: 100, direction: 'Inbound', access: 'Allow', protocol: 'Tcp', sourceAddressPrefix: '10.10.0.0/24', destinationAddressPrefix: '*', destinationPortRange: '22', sourcePortRange: '*' } };
    const lookalike: ArmRule = { name: 'jit-rzzzzzzzzz-22', properties: { priority: 150, direction: 'Inbound', access: 'Allow', protocol: 'Tcp', sourceAddressPrefix: '*', destinationAddressPrefix: '*', destinationPortRange: '22', sourcePortRange: '*', description: 'someone else\'s rule' } };
    arm.addForeignRule(db1.nicNsg, foreign);
    arm.addForeignRule(db1.nicNsg, lookalike);
    const id = await grant('ssh db1 1h from 203.0.113.9');
    const mine = ours(db1.nicNsg, id)[0]!;
    expect(mine.properties.priority).toBe(101);
    await h.cmd('alice@contoso.com', `revoke ${id}`);
    expect(ours(db1.nicNsg, id)).toEqual([]);
    expect(await h.app.service.reconcile()).toBe(0);
    const names = arm.rules(db1.nicNsg).map((r) => r.name);
    expect(names).toContain('allow-bastion');
    expect(names).toContain('jit-rzzzzzzzzz-22');
  });

  it('a VM without any NSG is unsupported: the grant fails with the reason and nothing is written', async () => {
    const puts = arm.stats.puts;
    const id = requestOf((await h.cmd('alice@contoso.com', 'ssh quick1 1h from 203.0.113.7')).reply).id;
    await h.cmd('bob@contoso.com', `approve ${id}`);
    const req = await state(id);
    expect(req.status).toBe('failed');
    expect(req.statusReason).toMatch(/not supported.*no network security group/);
    expect(arm.stats.puts).toBe(puts);
  });
});

describe('writes under ARM\'s rules', () => {
  it('409 AnotherOperationInProgress, 412 and a priority conflict are retried; the grant opens', async () => {
    arm.failNext(
      { status: 409, code: 'AnotherOperationInProgress' },
      { status: 412, code: 'PreconditionFailed' },
      { status: 400, code: 'SecurityRuleConflict' },
    );
    const before = { ...gate().stats };
    const m0 = await scrape();
    const id = await grant('rdp vm1 1h from 203.0.113.10');
    expect((await state(id)).status).toBe('active');
    expect(ours(vm1.nicNsg, id)).toHaveLength(1);
    expect(ours(vm1.subnetNsg, id)).toHaveLength(1);
    expect(gate().stats.retries - before.retries).toBe(3);
    // /metrics: one counter of ARM's answers, each label value one kind of answer to one kind of call.
    const m1 = await scrape();
    const grew = (labels: string) => (m1.get(`jit_network_arm_answers_total{${labels}}`) ?? 0) - (m0.get(`jit_network_arm_answers_total{${labels}}`) ?? 0);
    expect(grew('call="write",answer="409"')).toBe(1);
    expect(grew('call="write",answer="412"')).toBe(1);
    expect(grew('call="write",answer="4xx"')).toBe(1);
    expect(grew('call="write",answer="ok"')).toBeGreaterThanOrEqual(2);
    expect(grew('call="read",answer="ok"')).toBeGreaterThanOrEqual(2);
    expect((m1.get('jit_network_arm_write_retries_total') ?? 0) - (m0.get('jit_network_arm_write_retries_total') ?? 0)).toBe(3);
    await h.cmd('alice@contoso.com', `revoke ${id}`);
  });

  it('429 is waited out for at least Retry-After', async () => {
    arm.throttleNext(1, 1);
    const t0 = Date.now();
    const id = await grant('rdp vm1 1h from 203.0.113.11');
    const waited = Date.now() - t0;
    expect((await state(id)).status).toBe('active');
    expect(waited).toBeGreaterThanOrEqual(1000);
    await h.cmd('alice@contoso.com', `revoke ${id}`);
  });

  it('5xx until the deadline: the grant fails, says why, and nothing is left open on either NSG', async () => {
    arm.failNext(...Array.from({ length: 40 }, () => ({ status: 503, code: 'ServiceUnavailable' })));
    const id = await grant('rdp vm1 1h from 203.0.113.12');
    const req = await state(id);
    expect(req.status).toBe('failed');
    expect(req.statusReason).toMatch(/deadline/);
    arm.clearFaults();
    await waitFor('nothing open', async () => ours(vm1.nicNsg, id).length + ours(vm1.subnetNsg, id).length === 0 || null);
    const audit = (await h.audit(id)).map((e) => e.action);
    expect(audit).toContain('grant.failed');
    expect(audit).not.toContain('grant.activated');
  });

  it('a write that never gets an answer (dead connection) times out and is retried; the grant opens', async () => {
    arm.failNext({ hang: 'before' });
    const before = { ...gate().stats };
    const id = await grant('rdp vm1 1h from 203.0.113.13');
    expect((await state(id)).status).toBe('active');
    expect(ours(vm1.nicNsg, id)).toHaveLength(1);
    expect(ours(vm1.subnetNsg, id)).toHaveLength(1);
    expect(gate().stats.timeouts - before.timeouts).toBe(1);
    await h.cmd('alice@contoso.com', `revoke ${id}`);
    await waitFor('closed', async () => ours(vm1.nicNsg, id).length + ours(vm1.subnetNsg, id).length === 0 || null);
  });

  it('a write applied whose answer is lost is retried without a duplicate rule, and closes cleanly', async () => {
    arm.failNext({ hang: 'after' });
    const before = { ...gate().stats };
    const id = await grant('rdp vm1 1h from 203.0.113.14');
    expect((await state(id)).status).toBe('active');
    expect(ours(vm1.nicNsg, id)).toHaveLength(1);
    expect(ours(vm1.subnetNsg, id)).toHaveLength(1);
    expect(gate().stats.timeouts - before.timeouts).toBe(1);
    // The lost answer is also injected into the close: the rule still goes.
    arm.failNext({ hang: 'after' });
    await h.cmd('alice@contoso.com', `revoke ${id}`);
    await waitFor('closed', async () => ours(vm1.nicNsg, id).length + ours(vm1.subnetNsg, id).length === 0 || null);
    expect((await state(id)).status).toBe('revoked');
  });

  it('slow writes (under the timeout) are waited for, not retried', async () => {
    arm.failNext({ slowMs: 600 }, { slowMs: 600 });
    const before = { ...gate().stats };
    const id = await grant('rdp vm1 1h from 203.0.113.15');
    expect((await state(id)).status).toBe('active');
    expect(gate().stats.retries - before.retries).toBe(0);
    expect(ours(vm1.nicNsg, id)).toHaveLength(1);
    await h.cmd('alice@contoso.com', `revoke ${id}`);
  });

  it('ARM hanging until the deadline: the grant fails, says why, and nothing is left open', async () => {
    arm.failNext(...Array.from({ length: 10 }, () => ({ hang: 'before' as const })));
    const id = await grant('rdp vm1 1h from 203.0.113.16');
    const req = await state(id);
    expect(req.status).toBe('failed');
    expect(req.statusReason).toMatch(/RequestTimeout|no answer/);
    arm.clearFaults();
    await waitFor('nothing open', async () => ours(vm1.nicNsg, id).length + ours(vm1.subnetNsg, id).length === 0 || null);
    expect((await h.audit(id)).map((e) => e.action)).toContain('grant.failed');
  });

  it('retries are bounded by the deadline and jittered (no two waits alike, each within its backoff window)', async () => {
    const waits: number[] = [];
    const g = new AzureGate({ nsgWrites: 'rules',
      credential: { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3600_000 }) },
      endpoint: arm.url,
      caCert: readFileSync(arm.certFile, 'utf8'),
      writeDeadlineMs: 20_000,
      pollIntervalMs: 5,
      targets: () => [],
      // Time passes only in the recorded waits: the deadline is reached after ~20 s of backoff.
      sleep: async (ms) => {
        waits.push(ms);
        clock += ms;
      },
    });
    let clock = 0;
    const realNow = Date.now;
    const t0 = realNow();
    Date.now = () => realNow() + clock;
    try {
      arm.failNext(...Array.from({ length: 100 }, () => ({ status: 503, code: 'ServiceUnavailable' })));
      const target = { ...h.app.service.policyBook().targets.vm1! };
      await expect(g.open({ requestId: 'rjitterjit', target, ports: [{ port: 3389, protocol: 'tcp' }], sourcePrefix: '203.0.113.17/32', expiresAt: t0 + 3600_000 })).rejects.toThrow(/deadline/);
    } finally {
      Date.now = realNow;
      arm.clearFaults();
    }
    expect(waits.length).toBeGreaterThan(3);
    expect(waits.length).toBeLessThan(20);
    expect(new Set(waits).size).toBe(waits.length);
    // The VM's two NSGs retry side by side, each with its own backoff (windows 250–500, 500–1000,
    // 1000–2000 ms, …): sorted, the waits go two per window.
    [...waits].sort((a, b) => a - b).forEach((w, i) => {
      const cap = Math.min(10_000, 250 * 2 ** Math.min(Math.floor(i / 2) + 1, 6));
      expect(w).toBeGreaterThanOrEqual(cap / 2);
      expect(w).toBeLessThanOrEqual(cap);
    });
    expect(waits.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(2 * 20_000);
  });

  it('an operation that ends Canceled (superseded) is retried to Succeeded; one that ends Failed fails the grant with ARM\'s code and leaves nothing open', async () => {
    arm.failNext({ lro: 'Canceled', code: 'CanceledAndSupersededDueToAnotherOperation' });
    const before = { ...gate().stats };
    const id = await grant('rdp vm1 1h from 203.0.113.18');
    expect((await state(id)).status).toBe('active');
    expect(gate().stats.operationsCanceled - before.operationsCanceled).toBe(1);
    for (const nsg of [vm1.nicNsg, vm1.subnetNsg]) expect(ours(nsg, id).map((r) => r.properties.provisioningState)).toEqual(['Succeeded']);
    await h.cmd('alice@contoso.com', `revoke ${id}`);

    // ARM showed the goal state at once; the operation then failed: the rule is there, Failed.
    arm.failNext({ lro: 'Failed', code: 'InvalidResourceReference' });
    const failedId = await grant('rdp vm1 1h from 203.0.113.19');
    const req = await state(failedId);
    expect(req.status).toBe('failed');
    expect(req.statusReason).toMatch(/InvalidResourceReference/);
    await waitFor('nothing open', async () => ours(vm1.nicNsg, failedId).length + ours(vm1.subnetNsg, failedId).length === 0 || null);
  });

  it('a management lock (409 ScopeLocked) fails the grant at once with ARM\'s code, not after the deadline', async () => {
    arm.lockScope('/subscriptions/sub1/resourceGroups/prod');
    try {
      const retries = gate().stats.retries;
      const id = await grant('rdp vm1 1h from 203.0.113.20');
      const req = await state(id);
      expect(req.status).toBe('failed');
      expect(req.statusReason).toMatch(/ScopeLocked/);
      expect(gate().stats.retries).toBe(retries);
    } finally {
      arm.unlockScope('/subscriptions/sub1/resourceGroups/prod');
    }
  });

  it('grants arriving together for one NSG take turns: one rule operation each, no 409s, distinct priorities, few NSG reads', async () => {
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => h.cmd('alice@contoso.com', `rdp vm1 1h from 198.51.100.${i + 1}`).then((r) => requestOf(r.reply).id)));
    const puts = arm.stats.puts;
    const c409 = arm.stats.conflicts409;
    const gets = arm.stats.gets;
    await Promise.all(ids.map((id) => h.cmd('bob@contoso.com', `approve ${id}`)));
    for (const id of ids) expect((await state(id)).status).toBe('active');
    expect(arm.rules(vm1.nicNsg).filter((r) => ids.some((id) => r.name.startsWith(`jit-${id}-`)))).toHaveLength(20);
    // Child-rule writes: one operation per rule (2 NSGs × 20), never a 409 (the bot takes turns per NSG)…
    expect(arm.stats.puts - puts).toBe(40);
    expect(arm.stats.conflicts409 - c409).toBe(0);
    // …planned from a read of the NSG per batch, not per grant (+ operation polls, which are not counted here).
    expect(arm.stats.gets - gets).toBeLessThan(40);
    const priorities = arm.rules(vm1.nicNsg).map((r) => r.properties.priority);
    expect(new Set(priorities).size).toBe(priorities.length);
    await Promise.all(ids.map((id) => h.cmd('alice@contoso.com', `revoke ${id}`)));
    expect(arm.rules(vm1.nicNsg).filter((r) => ids.some((id) => r.name.startsWith(`jit-${id}-`)))).toEqual([]);
  });
});

describe('reconciler', () => {
  it('closes a rule whose grant was never recorded (crash between write and commit) once it expires, and audits it', async () => {
    const target = h.app.service.policyBook().targets.vm1!;
    const orphan = 'rorphan0001';
    await gate().open({ requestId: orphan, target, ports: [{ port: 3389, protocol: 'tcp' }], sourcePrefix: '203.0.113.99/32', expiresAt: Date.now() + 500 });
    expect(ours(vm1.nicNsg, orphan)).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 600));
    expect(await h.app.service.reconcile()).toBe(2);
    expect(ours(vm1.nicNsg, orphan)).toEqual([]);
    expect(ours(vm1.subnetNsg, orphan)).toEqual([]);
    expect((await h.audit(orphan)).map((e) => e.action)).toEqual(['rule.reconciled', 'rule.reconciled']);
  });

  it('a sweep with many stale grants on one NSG deletes exactly their rules, reading each NSG once', async () => {
    const target = h.app.service.policyBook().targets.vm1!;
    const orphans = ['rorphan0002', 'rorphan0003', 'rorphan0004', 'rorphan0005', 'rorphan0006'];
    await Promise.all(orphans.map((id, i) => gate().open({ requestId: id, target, ports: [{ port: 3389, protocol: 'tcp' }], sourcePrefix: `203.0.113.${110 + i}/32`, expiresAt: Date.now() + 400 })));
    await new Promise((r) => setTimeout(r, 500));
    const deletes = arm.stats.deletes;
    const puts = arm.stats.puts;
    expect(await h.app.service.reconcile()).toBe(orphans.length * 2);
    expect(arm.stats.deletes - deletes).toBe(orphans.length * 2);
    expect(arm.stats.puts - puts).toBe(0);
    for (const id of orphans) expect(ours(vm1.nicNsg, id).length + ours(vm1.subnetNsg, id).length).toBe(0);
  });

  it('extend rewrites the expiry the rules carry, so a reconciler reading only ARM agrees', async () => {
    const id = await grant('rdp vm1 30m from 203.0.113.13');
    await h.cmd('dave@contoso.com', `extend ${id} 30m`);
    const req = await state(id);
    for (const nsg of [vm1.nicNsg, vm1.subnetNsg]) expect(ours(nsg, id)[0]!.properties.description).toBe(`jit-bot request=${id} expires=${new Date(req.expiresAt!).toISOString()}`);
    await h.cmd('alice@contoso.com', `revoke ${id}`);
  });
});

describe('Azure Firewall targets (DNAT)', () => {
  const natOf = (res: string, id: string) => arm.natRules(res).filter((r) => String(r.name).startsWith(`jit-${id}-`));

  it('classic rules: a DNAT rule from a pool port on the public IP, NSG allows from the firewall subnet, connection details through the firewall', async () => {
    const id = await grant('ssh app1 1h from 203.0.113.7');
    expect((await state(id)).status).toBe('active');
    const [nat, ...more] = natOf(FW, id);
    expect(more).toEqual([]);
    expect(nat).toMatchObject({
      name: `jit-${id}-22`, sourceAddresses: ['203.0.113.7/32'], destinationAddresses: ['20.50.60.70'], destinationPorts: ['50000'],
      protocols: ['TCP'], translatedAddress: '10.0.0.7', translatedPort: '22',
    });
    for (const nsg of [app1.nicNsg, app1.subnetNsg]) expect(ours(nsg, id)[0]!.properties.sourceAddressPrefix).toBe('10.100.0.0/26');
    const status = await h.cmd('alice@contoso.com', `status ${id}`);
    expect(status.text).toContain('ssh -p 50000 azureuser@20.50.60.70');

    // The next grant takes the next pool port; when the pool is used up the grant fails and leaves nothing open.
    const second = await grant('ssh app1 1h from 203.0.113.8');
    expect(natOf(FW, second)[0]!.destinationPorts).toEqual(['50001']);
    const third = await grant('ssh app1 1h from 203.0.113.9');
    const failed = await state(third);
    expect(failed.status).toBe('failed');
    expect(failed.statusReason).toMatch(/no free port in 50000-50001/);
    expect(natOf(FW, third)).toEqual([]);
    for (const nsg of [app1.nicNsg, app1.subnetNsg]) expect(ours(nsg, third)).toEqual([]);

    await h.cmd('alice@contoso.com', `revoke ${id}`);
    await h.cmd('alice@contoso.com', `revoke ${second}`);
    expect(natOf(FW, id)).toEqual([]);
    expect(natOf(FW, second)).toEqual([]);
    expect(ours(app1.nicNsg, id)).toEqual([]);
  });

  it('Firewall Policy: the bot\'s rule collection group gets a NAT rule collection; revoke removes the rule', async () => {
    const id = await grant('rdp app2 1h from 203.0.113.7');
    expect((await state(id)).status).toBe('active');
    const [nat] = natOf(RCG, id);
    expect(nat).toMatchObject({ ruleType: 'NatRule', ipProtocols: ['TCP'], destinationAddresses: ['20.50.60.71'], destinationPorts: ['51000'], translatedAddress: '10.0.0.8', translatedPort: '3389' });
    const status = await h.cmd('alice@contoso.com', `status ${id}`);
    expect(status.text).toContain('mstsc /v:20.50.60.71:51000');
    // The reconciler sees DNAT rules too (nothing to do while the grant is active).
    expect((await h.rules()).some((r) => r.requestId === id && r.nat?.publicPort === 51000)).toBe(true);
    expect(await h.app.service.reconcile()).toBe(0);
    await h.cmd('alice@contoso.com', `revoke ${id}`);
    expect(natOf(RCG, id)).toEqual([]);
  });
});

describe('enable JIT on a target (deny rules)', () => {
  const denies = (nsg: string) => arm.rules(nsg).filter((r) => r.properties.access === 'Deny');

  it('a target marked enforce: true got Deny rules for its ports at start, on every NSG in its path, at the bottom of the range', () => {
    for (const nsg of [q2.nicNsg]) {
      const rules = denies(nsg).map((r) => [r.name, r.properties.destinationPortRange, r.properties.priority, r.properties.sourceAddressPrefix]);
      expect(rules).toEqual([
        ['jit-deny-quorum2-3389', '3389', 4096, '*'],
        ['jit-deny-quorum2-22', '22', 4095, '*'],
      ]);
    }
    // The subnet NSG is shared with vm1 and db1, so its rules target quorum2's address only.
    expect(denies(q2.subnetNsg).every((r) => r.properties.destinationAddressPrefix === '10.0.0.6')).toBe(true);
  });

  it('policy enable is for JIT Admins, idempotent, skips ports an existing deny covers; disable removes only its own rules', async () => {
    const refused = await h.cmd('alice@contoso.com', 'policy enable vm1');
    expect(refused.text).toMatch(/only a JIT Admin/);
    expect(denies(vm1.nicNsg)).toEqual([]);
    // Someone already denies 3389-3390 from the Internet on vm1's NIC NSG.
    arm.addForeignRule(vm1.nicNsg, { name: 'deny-rdp', properties: { priority: 3000, direction: 'Inbound', access: 'Deny', protocol: '*', sourceAddressPrefix: 'Internet', sourcePortRange: '*', destinationAddressPrefix: '*', destinationPortRange: '3389-3390' } });
    const first = await h.cmd('dave@contoso.com', 'policy enable vm1 3389 22');
    expect(first.text).toMatch(/now denied by default/);
    expect(denies(vm1.nicNsg).map((r) => r.name).sort()).toEqual(['deny-rdp', 'jit-deny-vm1-22']);
    // The subnet NSG is shared: quorum2's deny rules (to 10.0.0.6) do not cover vm1, so vm1 gets its own.
    const vm1Denies = denies(vm1.subnetNsg).filter((r) => r.properties.destinationAddressPrefix === '10.0.0.4');
    expect(vm1Denies.map((r) => r.name).sort()).toEqual(['jit-deny-vm1-22', 'jit-deny-vm1-3389']);
    expect(new Set(arm.rules(vm1.subnetNsg).map((r) => r.properties.priority)).size).toBe(arm.rules(vm1.subnetNsg).length);
    const puts = arm.stats.puts;
    const again = await h.cmd('dave@contoso.com', 'policy enable vm1 3389 22');
    expect(again.text).toMatch(/already denied/);
    expect(arm.stats.puts).toBe(puts);
    // A grant still opens (Allow at 100-199 wins over Deny at 4000+), and reconcile leaves deny rules alone.
    const id = await grant('rdp vm1 1h from 203.0.113.30');
    expect((await state(id)).status).toBe('active');
    expect(await h.app.service.reconcile()).toBe(0);
    await h.cmd('alice@contoso.com', `revoke ${id}`);
    const off = await h.cmd('dave@contoso.com', 'policy disable vm1');
    expect(off.text).toMatch(/removed \d+ deny rule/);
    expect(denies(vm1.nicNsg).map((r) => r.name)).toEqual(['deny-rdp']);
    expect(denies(vm1.subnetNsg).filter((r) => r.properties.destinationAddressPrefix === '10.0.0.4')).toEqual([]);
    expect(denies(vm1.subnetNsg).filter((r) => r.properties.destinationAddressPrefix === '10.0.0.6')).toHaveLength(2); // quorum2's stay
    const audit = (await h.audit('policy-vm1')).map((e) => e.action);
    expect(audit).toEqual(['policy.enforced', 'policy.enforced', 'policy.unenforced']);
  });
});

describe('enable JIT when a lower-numbered Allow wins', () => {
  it('says the port is NOT closed and names the rule, as Defender\'s JIT does; a port nothing opens is reported closed', async () => {
    const on = await h.cmd('dave@contoso.com', 'policy enable portal1 3389 22');
    expect(on.text).toMatch(/now denied by default/);
    expect(on.text).toContain('NOT closed: portal1-nsg/RDP@300 (3389/tcp) allows traffic from anywhere ahead of the Deny rules');
    expect(on.text).not.toContain('(22/tcp)');
    const audit = (await h.audit('policy-portal1')).find((e) => e.action === 'policy.enforced')!;
    expect(audit.details.stillOpen).toBe('portal1-nsg/RDP@300 (3389/tcp)');
    // Once the portal rule is gone, the same command says the ports are closed.
    arm.addForeignRule(portal1Nsg, { name: 'RDP', properties: { priority: 300, direction: 'Inbound', access: 'Deny', protocol: 'TCP', sourceAddressPrefix: '*', sourcePortRange: '*', destinationAddressPrefix: '*', destinationPortRange: '3389' } });
    const rules = arm.rules(portal1Nsg);
    rules.splice(rules.findIndex((r) => r.name === 'RDP' && r.properties.access === 'Allow'), 1);
    const again = await h.cmd('dave@contoso.com', 'policy enable portal1 3389 22');
    expect(again.text).not.toContain('NOT closed');
    await h.cmd('dave@contoso.com', 'policy disable portal1');
  });
});

describe('inventory', () => {
  it('vms lists Configured (with 7-day activity), Not configured and Unsupported VMs, as the JIT blade does', async () => {
    arm.standardVm('sub1', 'prod', 'web7', '10.0.0.20'); // in Azure, not in the policy file
    const { text, reply } = await h.cmd('dave@contoso.com', 'vms');
    expect(reply.kind).toBe('inventory');
    if (reply.kind !== 'inventory') return;
    const vm1Row = reply.configured.find((r) => r.name === 'vm1')!;
    expect(vm1Row.approved7d).toBeGreaterThanOrEqual(3);
    expect(vm1Row.lastUser).toBe('alice@contoso.com');
    expect(vm1Row.ports).toBe('3389/tcp,22/tcp');
    expect(reply.configured.find((r) => r.name === 'app1')!.address).toBe('20.50.60.70 (firewall)');
    // Uniform scale-set instances are listed too: ss1_0 is in the policy (as ss1-0), ss1_1 is not.
    expect(reply.notConfigured.map((v) => v.name).sort()).toEqual(['ss1_1', 'web7']);
    expect(reply.configured.map((r) => r.name)).toContain('ss1-0');
    expect(reply.unsupported).toEqual([{ name: 'quick1', id: expect.stringContaining('quick1'), reason: 'no network security group on its network interfaces or subnets' }]);
    expect(text).toMatch(/^Configured \(\d+\):/);
    // A requester sees only what their roles cover (alice: prod and dev requester; no read at the subscription).
    const alice = await h.cmd('alice@contoso.com', 'vms');
    expect(alice.reply.kind === 'inventory' && alice.reply.configured.every((r) => r.id.includes('/resourceGroups/prod/') || r.id.includes('/resourceGroups/dev/'))).toBe(true);
  });
});


describe('rules outlive neither their VM nor their NSG (closing from what was written)', () => {
  const opened = (nsg: string, id: string) => ours(nsg, id).length;

  it('the VM is deleted during a grant: its rules still close at expiry, each audited as removed', async () => {
    const id = await grant('ssh gone1 3s from 203.0.113.40');
    expect((await state(id)).status).toBe('active');
    expect(opened(gone1.nicNsg, id) + opened(gone1.subnetNsg, id)).toBe(2);
    arm.deleteVm(gone1.vm);
    // Closed, and audited: rule.removed is appended once ARM confirmed the DELETEs (after the rules are gone).
    await waitFor('closed at expiry', async () => ((await state(id)).status === 'expired' && opened(gone1.nicNsg, id) + opened(gone1.subnetNsg, id) === 0 && (await h.audit(id)).filter((e) => e.action === 'rule.removed').length >= 2) || null, 15_000);
    const removed = (await h.audit(id)).filter((e) => e.action === 'rule.removed').map((e) => String(e.details.scope));
    expect(removed.sort()).toEqual([gone1.nicNsg, gone1.subnetNsg].sort());
  });

  it('the NIC gets another NSG during a grant: revoke removes the rule from the NSG it was written to', async () => {
    const id = await grant('ssh moved1 1h from 203.0.113.41');
    expect(opened(moved1.nicNsg, id)).toBe(1);
    const other = arm.addNsg('/subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Network/networkSecurityGroups/moved1-new-nsg');
    arm.setNicNsg(moved1.nic, other);
    await h.cmd('alice@contoso.com', `revoke ${id}`);
    expect((await state(id)).status).toBe('revoked');
    expect(opened(moved1.nicNsg, id)).toBe(0);
    expect(opened(moved1.subnetNsg, id)).toBe(0);
    expect((await h.audit(id)).filter((e) => e.action === 'rule.removed')).toHaveLength(2);
    arm.setNicNsg(moved1.nic, moved1.nicNsg);
  });

  it('the reconciler sweeps every NSG and firewall policy of the managed resource groups: an orphan on a VM that is gone and in no policy is closed', async () => {
    // A grant written for a VM the policy does not list (dropped from it since), never recorded
    // (a crash), behind the firewall policy; then the VM is deleted. No live target leads there.
    const gone2 = arm.standardVm('sub1', 'prod', 'gone2', '10.0.0.11');
    const fw = { policyId: POLICY_ID, ruleCollectionGroup: 'jit', publicIp: '20.50.60.71', portPool: [51000, 51099] as [number, number], subnetPrefix: '10.100.0.0/26' };
    const writer = new AzureGate({ nsgWrites: 'rules',
      credential: { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3600_000 }) },
      endpoint: arm.url, caCert: readFileSync(arm.certFile, 'utf8'), pollIntervalMs: 5, targets: () => [],
    });
    const orphan = 'rorphan0009';
    // Expiring soon, but not before its writes (they took over 300 ms under load).
    const expiresAt = Date.now() + 3000;
    await writer.open({ requestId: orphan, target: { name: tn('gone2'), id: gone2.vm, os: 'linux', firewall: fw }, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: '203.0.113.42/32', expiresAt });
    expect(opened(gone2.nicNsg, orphan)).toBe(1);
    expect(arm.natRules(RCG).filter((r) => String(r.name).startsWith(`jit-${orphan}-`))).toHaveLength(1);
    arm.deleteVm(gone2.vm);
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 100));
    expect(await h.app.service.reconcile()).toBe(3);
    expect(opened(gone2.nicNsg, orphan) + opened(gone2.subnetNsg, orphan)).toBe(0);
    expect(arm.natRules(RCG).filter((r) => String(r.name).startsWith(`jit-${orphan}-`))).toEqual([]);
    expect((await h.audit(orphan)).map((e) => e.action)).toEqual(['rule.reconciled', 'rule.reconciled', 'rule.reconciled']);
  });
});

describe('NSGs and firewalls that reference application security groups and IP groups (linked access)', () => {
  const ASG = '/subscriptions/sub1/resourceGroups/shared/providers/Microsoft.Network/applicationSecurityGroups/web-servers';
  const asgRule: ArmRule = {
    name: 'allow-web-asg',
    properties: { priority: 300, direction: 'Inbound', access: 'Allow', protocol: 'Tcp', sourceAddressPrefix: '*', sourcePortRange: '*', destinationApplicationSecurityGroups: [{ id: ASG }], destinationPortRange: '443' },
  };

  it('a grant and "enable JIT" on an NSG with someone\'s ASG rule succeed: the bot writes only its own rules, which reference no ASG', async () => {
    arm.addForeignRule(db1.nicNsg, asgRule);
    const forbidden = arm.stats.forbidden403;
    const id = await grant('ssh db1 1h from 203.0.113.50');
    expect((await state(id)).status).toBe('active');
    expect(ours(db1.nicNsg, id)).toHaveLength(1);
    const on = await h.cmd('dave@contoso.com', 'policy enable db1 22');
    expect(on.text).toMatch(/now denied by default/);
    expect(arm.stats.forbidden403).toBe(forbidden);
    // The foreign rule is exactly as it was.
    expect(arm.rules(db1.nicNsg).find((r) => r.name === 'allow-web-asg')!.properties.destinationApplicationSecurityGroups).toEqual([{ id: ASG }]);
    await h.cmd('alice@contoso.com', `revoke ${id}`);
    await h.cmd('dave@contoso.com', 'policy disable db1');
  });

  it('the emulator checks linked access as ARM does: re-sending that NSG whole is refused (403), with the old role (NSG write, no ASG join) as LinkedAuthorizationFailed', async () => {
    const { request } = await import('node:https');
    const call = (em: ArmEmulator, method: string, path: string, body?: unknown) =>
      new Promise<{ status: number; json: { properties?: { securityRules?: unknown[] }; location?: string; error?: { code: string } } }>((resolve, reject) => {
        const req = request(`${em.url}${path}?api-version=2024-05-01`, { method, ca: readFileSync(em.certFile), headers: { authorization: 'Bearer raw-client', 'content-type': 'application/json' } }, (res) => {
          let b = '';
          res.on('data', (c: Buffer) => (b += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: b ? JSON.parse(b) : {} }));
        });
        req.on('error', reject);
        req.end(body === undefined ? undefined : JSON.stringify(body));
      });
    // What the bot did before (and what any whole-NSG writer does): PUT the NSG with every rule in it.
    const wholeNsg = async (em: ArmEmulator, nsg: string) => {
      const doc = (await call(em, 'GET', nsg)).json;
      return call(em, 'PUT', nsg, { location: doc.location, properties: { securityRules: doc.properties!.securityRules } });
    };
    // The shipped role has no networkSecurityGroups/write at all: the NSG itself is not the bot's to write.
    const shipped = await wholeNsg(arm, db1.nicNsg);
    expect([shipped.status, shipped.json.error?.code]).toEqual([403, 'AuthorizationFailed']);
    const role = (JSON.parse(readFileSync(new URL('../../manifest/azure/jit-bot-role.json', import.meta.url), 'utf8')) as { Actions: string[] }).Actions;
    const old = await new ArmEmulator({ roleActions: [...role, 'Microsoft.Network/networkSecurityGroups/write'] }).start();
    try {
      const vm = old.standardVm('sub1', 'prod', 'db1', '10.0.0.5');
      old.addForeignRule(vm.nicNsg, asgRule);
      const refused = await wholeNsg(old, vm.nicNsg);
      expect([refused.status, refused.json.error?.code]).toEqual([403, 'LinkedAuthorizationFailed']);
    } finally {
      await old.close();
    }
  });

  it('a classic firewall whose other rules reference an IP group: the shipped role has ipGroups/join/action; without it ARM refuses the firewall write', async () => {
    const IPG = '/subscriptions/sub1/resourceGroups/hub/providers/Microsoft.Network/ipGroups/partners';
    arm.addFirewallNetworkRules(FW, { name: 'partners', properties: { priority: 200, action: { type: 'Allow' }, rules: [{ name: 'p1', protocols: ['TCP'], sourceIpGroups: [IPG], destinationAddresses: ['10.0.0.0/8'], destinationPorts: ['443'] }] } });
    const id = await grant('ssh app1 1h from 203.0.113.51');
    expect((await state(id)).status).toBe('active');
    await h.cmd('alice@contoso.com', `revoke ${id}`);

    const role = (JSON.parse(readFileSync(new URL('../../manifest/azure/jit-bot-role.json', import.meta.url), 'utf8')) as { Actions: string[] }).Actions;
    const strict = await new ArmEmulator({ roleActions: role.filter((a) => !/ipGroups/i.test(a)) }).start();
    try {
      const app = strict.standardVm('sub1', 'prod', 'app1', '10.0.0.7');
      strict.addFirewall(FW, '20.50.60.70');
      strict.addFirewallNetworkRules(FW, { name: 'partners', properties: { priority: 200, action: { type: 'Allow' }, rules: [{ name: 'p1', protocols: ['TCP'], sourceIpGroups: [IPG], destinationAddresses: ['10.0.0.0/8'], destinationPorts: ['443'] }] } });
      const g = new AzureGate({ nsgWrites: 'rules', credential: { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3600_000 }) }, endpoint: strict.url, caCert: readFileSync(strict.certFile, 'utf8'), pollIntervalMs: 5, targets: () => [] });
      const target = { ...h.app.service.policyBook().targets.app1!, id: app.vm };
      await expect(g.open({ requestId: 'rlinked0001', target, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: '203.0.113.52/32', expiresAt: Date.now() + 60_000 })).rejects.toThrow(/LinkedAuthorizationFailed/);
      expect(g.stats.retries).toBe(0);
      expect(strict.rules(app.nicNsg).filter((r) => r.name.startsWith('jit-rlinked0001-'))).toEqual([]);
    } finally {
      await strict.close();
    }
  });
});

describe('firewalls take minutes (scaled down: 1.5 s per firewall update, 1 s per-call timeout)', () => {
  let slow: ArmEmulator;
  let g: AzureGate;
  let vmA: ReturnType<ArmEmulator['standardVm']>;
  const RCG2 = `${POLICY_ID}/ruleCollectionGroups/jit2`;
  const route = (group: string) => ({ policyId: POLICY_ID, ruleCollectionGroup: group, publicIp: '20.50.60.71', portPool: [51000, 51099] as [number, number], subnetPrefix: '10.100.0.0/26' });
  const natOf = (res: string, id: string) => slow.natRules(res).filter((r) => String(r.name).startsWith(`jit-${id}-`));

  beforeAll(async () => {
    // Per-call timeout 1 s (a loaded machine passed 300 ms on one HTTPS call and counted a timeout), still under the 1.5 s update.
    slow = await new ArmEmulator({ firewallLatencyMs: 1500 }).start();
    vmA = slow.standardVm('sub1', 'prod', 'fwa', '10.0.0.30');
    slow.addFirewall(FW2, '20.50.60.71');
    slow.addFirewallPolicy(POLICY_ID, [FW2]);
    g = new AzureGate({ nsgWrites: 'rules',
      credential: { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3600_000 }) },
      endpoint: slow.url, caCert: readFileSync(slow.certFile, 'utf8'), pollIntervalMs: 20, requestTimeoutMs: 1000, writeDeadlineMs: 3000, firewallDeadlineMs: 20_000, targets: () => [],
    });
  });
  afterAll(async () => {
    await slow?.close();
  });

  it('a grant is reported open only once the policy update has Succeeded, though it outlasts every per-call timeout and the NSG deadline scale', async () => {
    const timeouts = g.stats.timeouts;
    const rules = await g.open({ requestId: 'rslowfw001', target: { name: tn('fwa'), id: vmA.vm, os: 'linux', firewall: route('jit') }, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: '203.0.113.60/32', expiresAt: Date.now() + 60_000 });
    expect(slow.provisioningState(RCG)).toBe('Succeeded');
    expect(rules.find((r) => r.nat)?.nat?.publicPort).toBe(51000);
    expect(natOf(RCG, 'rslowfw001')).toHaveLength(1);
    expect(g.stats.timeouts).toBe(timeouts);
  });

  it('grants for two rule collection groups of one policy take turns (ARM runs one operation per policy): no 409', async () => {
    const c409 = slow.stats.conflicts409;
    await Promise.all([
      g.open({ requestId: 'rslowfw002', target: { name: tn('fwa'), id: vmA.vm, os: 'linux', firewall: route('jit') }, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: '203.0.113.61/32', expiresAt: Date.now() + 60_000 }),
      g.open({ requestId: 'rslowfw003', target: { name: tn('fwa'), id: vmA.vm, os: 'linux', firewall: route('jit2') }, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: '203.0.113.62/32', expiresAt: Date.now() + 60_000 }),
    ]);
    expect(slow.stats.conflicts409).toBe(c409);
    expect(natOf(RCG, 'rslowfw002')).toHaveLength(1);
    expect(natOf(RCG2, 'rslowfw003')).toHaveLength(1);
    expect(slow.provisioningState(RCG2)).toBe('Succeeded');
  });

  it('a write arriving while another writer\'s policy update is in flight waits for it (no 409), and opens only after its own update Succeeded', async () => {
    const other = new AzureGate({ nsgWrites: 'rules',
      credential: { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3600_000 }) },
      endpoint: slow.url, caCert: readFileSync(slow.certFile, 'utf8'), pollIntervalMs: 20, requestTimeoutMs: 1000, writeDeadlineMs: 3000, firewallDeadlineMs: 20_000, targets: () => [],
    });
    const target = { name: tn('fwa'), id: vmA.vm, os: 'linux' as const, firewall: route('jit') };
    const c409 = slow.stats.conflicts409;
    // Another replica (no shared lock here) starts a policy update…
    const first = other.open({ requestId: 'rslowfw005', target, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: '203.0.113.64/32', expiresAt: Date.now() + 60_000 });
    await waitFor('policy busy', async () => slow.provisioningState(RCG) === 'Updating' || null, 5000);
    // …and this gate's grant meets it in flight.
    await g.open({ requestId: 'rslowfw006', target, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: '203.0.113.65/32', expiresAt: Date.now() + 60_000 });
    expect(slow.provisioningState(RCG)).toBe('Succeeded');
    await first;
    expect(slow.stats.conflicts409).toBe(c409);
    expect(natOf(RCG, 'rslowfw005')).toHaveLength(1);
    expect(natOf(RCG, 'rslowfw006')).toHaveLength(1);
  });

  it('closing reports the DNAT rule removed (for the audit) even when the write\'s answer was lost and the retry finds it gone', async () => {
    const written = await g.open({ requestId: 'rslowfw004', target: { name: tn('fwa'), id: vmA.vm, os: 'linux', firewall: route('jit') }, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: '203.0.113.63/32', expiresAt: Date.now() + 60_000 });
    // The policy's write is applied but its answer is lost: the retry re-reads and finds the rule gone.
    slow.failNext({ hang: 'after' });
    const timeouts = g.stats.timeouts;
    const fwTarget = { name: tn('fwa'), id: vmA.vm, os: 'linux' as const, firewall: route('jit') };
    const removed = await g.close('rslowfw004', fwTarget, written.filter((r) => r.nat));
    expect(g.stats.timeouts).toBe(timeouts + 1);
    expect(natOf(RCG, 'rslowfw004')).toEqual([]);
    expect(removed.map((r) => r.name)).toEqual(['jit-rslowfw004-22']);
    expect(await g.close('rslowfw004', fwTarget, written)).toHaveLength(2); // the two NSG rules
  });
});

describe('reads are throttled too', () => {
  it('vms builds the inventory from Resource Graph: paged by $skipToken, scoped to the subscriptions, a 429 waited out, Uniform scale-set instances included, no per-VM reads', async () => {
    const retries = gate().stats.readRetries;
    const throttled = arm.stats.graphThrottled429;
    const before = arm.graphRequests.length;
    const callsBefore = arm.calls.length;
    arm.throttleGraph(1, 1);
    const { reply } = await h.cmd('dave@contoso.com', 'vms');
    expect(reply.kind).toBe('inventory');
    if (reply.kind !== 'inventory') return;
    expect(arm.stats.graphThrottled429 - throttled).toBe(1);
    expect(gate().stats.readRetries - retries).toBeGreaterThanOrEqual(1);
    const sent = arm.graphRequests.slice(before);
    // More rows than one page holds (5): later pages carry the $skipToken of the one before.
    expect(sent.filter((r) => typeof (r.body.options as { $skipToken?: unknown }).$skipToken === 'string').length).toBeGreaterThan(3);
    for (const r of sent) {
      expect(r.apiVersion).toBe('2022-10-01');
      expect(r.body.subscriptions).toEqual(['sub1']);
      expect((r.body.options as { $top?: number }).$top).toBe(1000);
    }
    // Nothing was listed through ARM, and no machine outside the policy (which only the inventory
    // would read) was read one by one: Resource Graph had every VM's NICs.
    const during = arm.calls.slice(callsBefore).map((c) => c.path);
    expect(during.filter((p) => /\/virtualMachineScaleSets\/ss1\/virtualMachines\/1|\/virtualMachines\/web7|\/providers\/Microsoft\.(Compute|Network)\/(virtualMachines|networkInterfaces|virtualNetworks|virtualMachineScaleSets)$/i.test(p))).toEqual([]);
    expect(reply.configured.length + reply.notConfigured.length + reply.unsupported.length).toBeGreaterThan(8);
    expect(reply.configured.map((r) => r.name)).toEqual(expect.arrayContaining(['vm1', 'db1', 'app1', 'app2', 'ss1-0']));
    expect(reply.notConfigured.map((r) => r.name)).toContain('ss1_1');
  });

  it('without Resource Graph (a cloud or proxy that lacks it) vms falls back to paged ARM lists and shows the same VMs; 429s on those reads are waited out', async () => {
    const viaGraph = await h.cmd('dave@contoso.com', 'vms');
    arm.resourceGraphEnabled = false;
    try {
      const retries = gate().stats.readRetries;
      arm.throttleReads(2, 1);
      const viaLists = await h.cmd('dave@contoso.com', 'vms');
      expect(gate().stats.readRetries - retries).toBe(2);
      // The same rows in each group (Resource Graph's come sorted by id, the lists' in their own order).
      const rows = (r: typeof viaGraph.reply) =>
        r.kind !== 'inventory' ? [] : [r.configured.map((x) => x.id), r.notConfigured.map((x) => x.id), r.unsupported.map((x) => `${x.id}: ${x.reason}`)].map((g) => [...g].sort());
      expect(rows(viaLists.reply)).toEqual(rows(viaGraph.reply));
      expect(rows(viaGraph.reply).flat().length).toBeGreaterThan(8);
      expect(arm.calls.some((c) => /\/providers\/Microsoft\.Compute\/virtualMachines$/i.test(c.path))).toBe(true);
      // An endpoint without Resource Graph is not asked again at every vms (for an hour).
      const asked = arm.graphRequests.length;
      await h.cmd('dave@contoso.com', 'vms');
      expect(arm.graphRequests.length).toBe(asked);
    } finally {
      arm.resourceGraphEnabled = true;
    }
  });

  it('reads stay under the concurrency cap: a sweep of many NSGs keeps at most AZURE_READ_CONCURRENCY reads in flight', async () => {
    const busy = await new ArmEmulator({ readLatencyMs: 30 }).start();
    try {
      const targets = Array.from({ length: 12 }, (_, i) => busy.standardVm('sub1', `rg${i % 4}`, `cap${i}`, `10.2.0.${i + 4}`)).map((v, i) => ({ name: tn(`cap${i}`), id: v.vm, os: 'linux' as const }));
      const g = new AzureGate({ nsgWrites: 'rules',
        credential: { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3600_000 }) },
        endpoint: busy.url, caCert: readFileSync(busy.certFile, 'utf8'), pollIntervalMs: 5, readConcurrency: 3, scopeSweepIntervalMs: 0, targets: () => targets,
      });
      expect(await g.list()).toEqual([]);
      expect(busy.stats.gets).toBeGreaterThan(12 * 3);
      expect(busy.maxReadsInFlight).toBeLessThanOrEqual(3);
      expect(busy.maxReadsInFlight).toBeGreaterThan(1);
    } finally {
      await busy.close();
    }
  });

  it('the reconciler settles per resource: reads refused in one resource group (403) do not stop the sweep closing expired rules elsewhere', async () => {
    const target = h.app.service.policyBook().targets.vm1!;
    const orphan = 'rorphan0010';
    await gate().open({ requestId: orphan, target, ports: [{ port: 3389, protocol: 'tcp' }], sourcePrefix: '203.0.113.70/32', expiresAt: Date.now() + 300 });
    await new Promise((r) => setTimeout(r, 400));
    arm.denyReads('/subscriptions/sub1/resourceGroups/hub');
    try {
      expect(await h.app.service.reconcile()).toBe(2);
    } finally {
      arm.allowReads('/subscriptions/sub1/resourceGroups/hub');
    }
    expect(ours(vm1.nicNsg, orphan).length + ours(vm1.subnetNsg, orphan).length).toBe(0);
  });
});

describe('address families and limits', () => {
  it('a dual-stack VM: an IPv4 source gets a rule to its IPv4 address, an IPv6 source one to its IPv6 address; no rule mixes families', async () => {
    const v4 = await grant('ssh dual1 1h from 203.0.113.80');
    expect((await state(v4)).status).toBe('active');
    expect(ours(dual1.nicNsg, v4).map((r) => [r.name, r.properties.sourceAddressPrefix, r.properties.destinationAddressPrefix])).toEqual([[`jit-${v4}-22`, '203.0.113.80/32', '10.0.0.12']]);
    const v6 = await grant('ssh dual1 1h from 2001:db8::80');
    const req = await state(v6);
    expect(req.status).toBe('active');
    expect(ours(dual1.nicNsg, v6).map((r) => [r.name, r.properties.destinationAddressPrefix])).toEqual([[`jit-${v6}-22-v6`, 'fd00::12']]);
    for (const id of [v4, v6]) await h.cmd('alice@contoso.com', `revoke ${id}`);
    expect(ours(dual1.nicNsg, v4).length + ours(dual1.nicNsg, v6).length).toBe(0);
  });

  it('an IPv6 source for an IPv4-only VM is refused with the reason; nothing is written', async () => {
    const puts = arm.stats.puts;
    const id = await grant('ssh vm1 1h from 2001:db8::81');
    const req = await state(id);
    expect(req.status).toBe('failed');
    expect(req.statusReason).toMatch(/IPv6 but the VM has no IPv6 address/);
    expect(arm.stats.puts).toBe(puts);
  });

  it('an NSG at ARM\'s 1,000-rule limit: the grant fails saying so, nothing is written', async () => {
    for (let i = 0; i < 1000; i++) arm.addForeignRule(full1.nicNsg, { name: `bulk-${i}`, properties: { priority: 1000 + i, direction: 'Inbound', access: 'Allow', protocol: 'Tcp', sourceAddressPrefix: `10.50.${i >> 8}.${i & 255}`, sourcePortRange: '*', destinationAddressPrefix: '*', destinationPortRange: '8080' } });
    const id = await grant('ssh full1 1h from 203.0.113.82');
    const req = await state(id);
    expect(req.status).toBe('failed');
    expect(req.statusReason).toMatch(/would hold 1001 rules; Azure allows 1000/);
    expect(ours(full1.nicNsg, id).length + ours(full1.subnetNsg, id).length).toBe(0);
  });

  it('"enable JIT" on a target with a 62-character name writes rule names within ARM\'s 80 characters, and disable finds them', async () => {
    const on = await h.cmd('dave@contoso.com', `policy enable ${LONG} 3389`);
    expect(on.text).toMatch(/now denied by default/);
    const names = arm.rules(long1.nicNsg).filter((r) => r.properties.access === 'Deny').map((r) => r.name);
    expect(names).toHaveLength(1);
    expect(names[0]!.length).toBeLessThanOrEqual(80);
    const off = await h.cmd('dave@contoso.com', `policy disable ${LONG}`);
    expect(off.text).toMatch(/removed 2 deny rules/);
    expect(arm.rules(long1.nicNsg).filter((r) => r.properties.access === 'Deny')).toEqual([]);
  });

  it('a classic firewall at Azure Firewall\'s 250 (249 DNAT destinations + its public IP): the grant fails naming the limit, nothing is left open; ARM refuses the same write', async () => {
    const full = await new ArmEmulator().start();
    try {
      const v = full.standardVm('sub1', 'prod', 'nat1', '10.0.0.60');
      full.addFirewall(FW, '20.50.60.70');
      // 249 unique destinations, plus 10 rules to one of them (one destination however many rules: not counted again).
      const rules = Array.from({ length: 249 }, (_, i) => ({ name: `n${i}`, protocols: ['TCP'], sourceAddresses: ['*'], destinationAddresses: ['20.50.60.70'], destinationPorts: [String(40000 + i)], translatedAddress: '10.0.0.99', translatedPort: '443' }));
      for (let i = 0; i < 10; i++) rules.push({ ...rules[0]!, name: `same${i}`, sourceAddresses: [`198.51.100.${i}`] });
      full.addFirewallNatRules(FW, { name: 'others', properties: { priority: 200, action: { type: 'Dnat' }, rules } });
      const g = new AzureGate({ nsgWrites: 'rules', credential: { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3600_000 }) }, endpoint: full.url, caCert: readFileSync(full.certFile, 'utf8'), pollIntervalMs: 5, targets: () => [] });
      const target = { name: tn('nat1'), id: v.vm, os: 'linux' as const, firewall: { firewallId: FW, publicIp: '20.50.60.70', portPool: [50000, 50001] as [number, number], subnetPrefix: '10.100.0.0/26' } };
      await expect(g.open({ requestId: 'rnatlimit1', target, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: '203.0.113.85/32', expiresAt: Date.now() + 60_000 })).rejects.toThrow(
        /would bring its firewall to 251 DNAT destinations \(250 unique destination address\/port\/protocol in the DNAT rule collections of hub-fw, \+ 1 public IP address of the firewall\); Azure Firewall allows 250/,
      );
      expect(full.rules(v.nicNsg).filter((r) => r.name.startsWith('jit-rnatlimit1-'))).toEqual([]);
      expect(full.natRules(FW)).toHaveLength(259);
      // ARM (the emulator) counts the same way: one more destination is refused, one more rule to a known destination is not.
      const put = async (extra: Record<string, unknown>) => {
        const { request } = await import('node:https');
        const doc = JSON.parse(await new Promise<string>((resolve, reject) => {
          request(`${full.url}${FW}?api-version=2024-05-01`, { ca: readFileSync(full.certFile), headers: { authorization: 'Bearer raw-client' } }, (res) => { let b = ''; res.on('data', (c: Buffer) => (b += c.toString())); res.on('end', () => resolve(b)); }).on('error', reject).end();
        })) as { location: string; properties: { natRuleCollections: Array<{ properties: { rules: unknown[] } }> } };
        doc.properties.natRuleCollections[0]!.properties.rules.push(extra);
        return new Promise<{ status: number; code?: string; message?: string }>((resolve, reject) => {
          const req = request(`${full.url}${FW}?api-version=2024-05-01`, { method: 'PUT', ca: readFileSync(full.certFile), headers: { authorization: 'Bearer raw-client', 'content-type': 'application/json' } }, (res) => {
            let b = '';
            res.on('data', (c: Buffer) => (b += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, ...((b ? (JSON.parse(b) as { error?: { code: string; message: string } }) : {}).error ?? {}) }));
          });
          req.on('error', reject);
          req.end(JSON.stringify({ location: doc.location, properties: doc.properties }));
        });
      };
      const refused = await put({ name: 'one-more', protocols: ['TCP'], sourceAddresses: ['*'], destinationAddresses: ['20.50.60.70'], destinationPorts: ['49999'], translatedAddress: '10.0.0.99', translatedPort: '22' });
      expect([refused.status, refused.code]).toEqual([400, 'AzureFirewallNatRuleLimitReached']);
      expect(refused.message).toMatch(/251 DNAT destinations/);
    } finally {
      await full.close();
    }
  });

  it('a Firewall Policy: the 250 counts every rule collection group of the policy and of its base policy, plus the firewall\'s public IPs; the grant past it fails naming the limit, and ARM refuses the same', async () => {
    const em = await new ArmEmulator().start();
    try {
      const v = em.standardVm('sub1', 'prod', 'nat2', '10.0.0.61');
      const hub = '/subscriptions/sub1/resourceGroups/hub/providers/Microsoft.Network';
      const fwa = em.addFirewall(`${hub}/azureFirewalls/app-fw`, ['20.50.60.80', '20.50.60.81', '20.50.60.82']);
      const base = em.addFirewallPolicy(`${hub}/firewallPolicies/corp-base`);
      const policy = em.addFirewallPolicy(`${hub}/firewallPolicies/app-policy`, [fwa], base);
      const nat = (name: string, rules: Array<Record<string, unknown>>) => ({ ruleCollectionType: 'FirewallPolicyNatRuleCollection', name, priority: 100, action: { type: 'DNAT' }, rules });
      const dnat = (name: string, address: string, port: number) => ({ ruleType: 'NatRule', name, ipProtocols: ['TCP'], sourceAddresses: ['*'], destinationAddresses: [address], destinationPorts: [String(port)], translatedAddress: '10.0.0.99', translatedPort: '443' });
      // The base policy's group: 100 destinations. The policy's other group: 145 more, one of them
      // on the bot's own address and pool port 50000, and a network rule collection (not DNAT).
      em.addRuleCollectionGroup(base, 'corp', [nat('corp-dnat', Array.from({ length: 100 }, (_, i) => dnat(`c${i}`, '20.50.60.81', 30000 + i)))]);
      em.addRuleCollectionGroup(policy, 'apps', [
        nat('apps-dnat', [...Array.from({ length: 144 }, (_, i) => dnat(`a${i}`, '20.50.60.82', 31000 + i)), dnat('a-pool', '20.50.60.80', 50000)]),
        { ruleCollectionType: 'FirewallPolicyFilterRuleCollection', name: 'apps-net', priority: 200, action: { type: 'Allow' }, rules: Array.from({ length: 20 }, (_, i) => ({ ruleType: 'NetworkRule', name: `n${i}`, ipProtocols: ['TCP'], sourceAddresses: ['*'], destinationAddresses: ['10.0.0.0/8'], destinationPorts: [String(8000 + i)] })) },
      ]);
      const g = new AzureGate({ nsgWrites: 'rules', credential: { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3600_000 }) }, endpoint: em.url, caCert: readFileSync(em.certFile, 'utf8'), pollIntervalMs: 5, targets: () => [] });
      const target = { name: tn('nat2'), id: v.vm, os: 'linux' as const, firewall: { policyId: policy, ruleCollectionGroup: 'jit', publicIp: '20.50.60.80', portPool: [50000, 50009] as [number, number], subnetPrefix: '10.100.0.0/26' } };
      const open = (requestId: string) => g.open({ requestId, target, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: '203.0.113.86/32', expiresAt: Date.now() + 60_000 });
      // 245 + 1 = 246 destinations + 3 public IPs = 249, then 250: both fit. Port 50000 is taken in another group.
      const first = await open('rnatpol1');
      expect(first.find((r) => r.nat)?.nat?.publicPort).toBe(50001);
      await open('rnatpol2');
      await expect(open('rnatpol3')).rejects.toThrow(
        /^jit would bring its firewall to 251 DNAT destinations \(248 unique destination address\/port\/protocol in the rule collection groups of app-policy and of its base policy corp-base, \+ 3 public IP addresses of the firewall\); Azure Firewall allows 250/,
      );
      expect(em.rules(v.nicNsg).filter((r) => r.name.startsWith('jit-rnatpol3-'))).toEqual([]);
      expect(em.natRules(`${policy}/ruleCollectionGroups/jit`).map((r) => String(r.name))).toEqual(['jit-rnatpol1-22', 'jit-rnatpol2-22']);
      // ARM (the emulator) counts the same way: one more destination in any group of the policy, or in
      // its base policy (which the policy inherits), is refused.
      const { request } = await import('node:https');
      const put = (path: string, body: unknown) =>
        new Promise<{ status: number; code?: string }>((resolve, reject) => {
          const req = request(`${em.url}${path}?api-version=2024-05-01`, { method: 'PUT', ca: readFileSync(em.certFile), headers: { authorization: 'Bearer raw-client', 'content-type': 'application/json' } }, (res) => {
            let b = '';
            res.on('data', (c: Buffer) => (b += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, ...(b ? { code: (JSON.parse(b) as { error?: { code: string } }).error?.code } : {}) }));
          });
          req.on('error', reject);
          req.end(JSON.stringify(body));
        });
      for (const group of [`${policy}/ruleCollectionGroups/extra`, `${base}/ruleCollectionGroups/extra`]) {
        expect(await put(group, { properties: { priority: 400, ruleCollections: [nat('more', [dnat('m1', '20.50.60.81', 39999)])] } })).toEqual({ status: 400, code: 'AzureFirewallNatRuleLimitReached' });
      }
      // A rule to a destination already counted is not one more.
      expect((await put(`${policy}/ruleCollectionGroups/extra`, { properties: { priority: 400, ruleCollections: [nat('same', [{ ...dnat('s1', '20.50.60.81', 30000), sourceAddresses: ['198.51.100.7'] }])] } })).status).toBe(201);
    } finally {
      await em.close();
    }
  });

  it('DNAT translates to the primary NIC\'s primary address, not to whichever address comes first', async () => {
    const id = await grant('ssh prim1 1h from 203.0.113.83');
    expect((await state(id)).status).toBe('active');
    expect(arm.natRules(FW).filter((r) => String(r.name).startsWith(`jit-${id}-`)).map((r) => r.translatedAddress)).toEqual(['10.0.0.17']);
    await h.cmd('alice@contoso.com', `revoke ${id}`);
  });

  it('a DNAT public IP that is not the firewall\'s is refused with the reason; nothing is written', async () => {
    const puts = arm.stats.puts;
    const id = await grant('ssh fwbad1 1h from 203.0.113.84');
    const req = await state(id);
    expect(req.status).toBe('failed');
    expect(req.statusReason).toMatch(/198\.51\.100\.99 is not a public IP of its firewall \(20\.50\.60\.70\)/);
    expect(arm.stats.puts).toBe(puts);
  });
});

describe('Uniform scale-set instances', () => {
  it('a grant to an instance opens its scale-set NIC NSG (and the subnet NSG) to the instance\'s address only', async () => {
    const id = await grant('ssh ss1-0 1h from 203.0.113.90');
    expect((await state(id)).status).toBe('active');
    expect(ours(ssNsg, id).map((r) => r.properties.destinationAddressPrefix)).toEqual(['10.0.0.50']);
    expect(ours(vm1.subnetNsg, id)).toHaveLength(1);
    await h.cmd('alice@contoso.com', `revoke ${id}`);
    expect(ours(ssNsg, id)).toEqual([]);
  });
});

describe('least privilege', () => {
  it('the shipped custom role (manifest/azure/jit-bot-role.json) covers every ARM call this suite made, and allows no wildcard, authorization or resource delete', () => {
    const role = JSON.parse(readFileSync(new URL('../../manifest/azure/jit-bot-role.json', import.meta.url), 'utf8')) as { Actions: string[]; NotActions: string[]; DataActions: string[]; AssignableScopes: string[]; IsCustom: boolean };
    const allowed = new Set(role.Actions.map((a) => a.toLowerCase()));
    // The adapter's calls (not the raw whole-NSG PUT of the linked-access test).
    // Resource Graph queries need no action (rows are filtered by each resource's read action, checked by the emulator).
    const used = new Set(arm.calls.filter((c) => c.token !== 'raw-client').map((c) => actionOf(c.method, c.path)).filter((a) => a !== NO_ACTION));
    // Rows of a type are returned only if the role may read it there: those reads count as used.
    for (const r of arm.graphRequests) for (const t of String(r.body.query).match(/'microsoft\.[a-z]+\/[a-z/]+'/g) ?? []) used.add(`${t.slice(1, -1)}/read`);
    // The suite exercised NSG rules, both firewall kinds, discovery, inventory, the scope sweep and LRO polling.
    expect(used.size).toBeGreaterThanOrEqual(12);
    expect([...used].filter((a) => !allowed.has(a))).toEqual([]);
    expect(role.IsCustom).toBe(true);
    expect(role.DataActions).toEqual([]);
    for (const a of role.Actions) {
      expect(a).not.toContain('*');
      // The only delete: the bot's own security rules (child resources), never a resource.
      if (/\/delete$/i.test(a)) expect(a).toBe('Microsoft.Network/networkSecurityGroups/securityRules/delete');
      expect(a).not.toMatch(/^Microsoft\.Authorization\//i);
    }
    // Everything in the role is either used here or a linked-access check ARM makes on a firewall write.
    const linked = ['microsoft.network/virtualnetworks/subnets/join/action', 'microsoft.network/publicipaddresses/join/action', 'microsoft.network/ipgroups/join/action'];
    expect([...allowed].filter((a) => !used.has(a) && !linked.includes(a))).toEqual([]);
    expect(role.AssignableScopes.every((s) => /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+$/.test(s))).toBe(true);
  });
});
