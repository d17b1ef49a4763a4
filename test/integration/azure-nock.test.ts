// The Azure gate against ARM's real wire format at https://management.azure.com, intercepted with
// nock: child security-rule PUT / DELETE, 201 + Azure-AsyncOperation polled to a terminal state,
// ARM's error codes (on the request and as an operation's end), If-Match on the PUT alone. No
// network, no Redis (the per-resource lock is in-process here).
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AzureGate } from '../../src/adapters/azure/gate.js';
import type { Target } from '../../src/core/types.js';
import { tn } from '../fixtures/ids.js';

const ARM = 'https://management.azure.com';
const RG = '/subscriptions/sub1/resourceGroups/prod';
const VM = `${RG}/providers/Microsoft.Compute/virtualMachines/vm1`;
const NIC = `${RG}/providers/Microsoft.Network/networkInterfaces/vm1-nic`;
const SUBNET = `${RG}/providers/Microsoft.Network/virtualNetworks/prod-vnet/subnets/default`;
const NSG = `${RG}/providers/Microsoft.Network/networkSecurityGroups/vm1-nsg`;
const HUB = '/subscriptions/sub1/resourceGroups/hub/providers/Microsoft.Network';
const POLICY = `${HUB}/firewallPolicies/hub-policy`;
const RCG = `${POLICY}/ruleCollectionGroups/jit`;
const BASE = `${HUB}/firewallPolicies/corp-base`;
const OPS = '/subscriptions/sub1/providers/Microsoft.Network/locations/westeurope/operations';
const target: Target = { name: tn('vm1'), id: VM, os: 'windows' };
const rule = (name: string) => `${NSG}/securityRules/${name}`;

const nsgBody = (etag: string, rules: unknown[] = []) => ({
  id: NSG, name: 'vm1-nsg', type: 'Microsoft.Network/networkSecurityGroups', location: 'westeurope', etag,
  properties: { provisioningState: 'Succeeded', securityRules: rules, defaultSecurityRules: [] },
});

function discovery() {
  nock(ARM)
    .get(VM).query(true)
    .reply(200, { id: VM, name: 'vm1', location: 'westeurope', properties: { networkProfile: { networkInterfaces: [{ id: NIC, properties: { primary: true } }] } } })
    .get(NIC).query(true)
    .reply(200, { id: NIC, name: 'vm1-nic', properties: { ipConfigurations: [{ id: `${NIC}/ipConfigurations/ipconfig1`, name: 'ipconfig1', properties: { privateIPAddress: '10.0.0.4', primary: true, subnet: { id: SUBNET } } }], networkSecurityGroup: { id: NSG } } })
    .get(SUBNET).query(true)
    .reply(200, { id: SUBNET, name: 'default', properties: { addressPrefix: '10.0.0.0/24' } });
}

/** An operation that answers InProgress `n` times, then ends as given; records the polls' If-Match headers. */
function operation(id: string, end: Record<string, unknown>, inProgress = 1, ifMatches: Array<string | undefined> = []) {
  const scope = nock(ARM);
  for (let i = 0; i < inProgress; i++) scope.get(`${OPS}/${id}`).query(true).reply(function () { ifMatches.push(this.req.headers['if-match'] as string | undefined); return [200, { status: 'InProgress' }]; });
  scope.get(`${OPS}/${id}`).query(true).reply(function () { ifMatches.push(this.req.headers['if-match'] as string | undefined); return [200, end]; });
  return `${ARM}${OPS}/${id}?api-version=2024-05-01`;
}

beforeAll(() => {
  nock.disableNetConnect();
});
afterEach(() => {
  nock.cleanAll();
});
afterAll(() => {
  nock.enableNetConnect();
});

const gate = (targets: Target[] = [target], nsgWrites: 'auto' | 'rules' = 'rules') =>
  new AzureGate({
    nsgWrites,
    credential: { getToken: async () => ({ token: 'test-token', expiresOnTimestamp: Date.now() + 3600_000 }) },
    pollIntervalMs: 1,
    writeDeadlineMs: 5000,
    targets: () => targets,
    sleep: async () => {},
  });

const open = (g: AzureGate, requestId: string, t: Target = target) => g.open({ requestId, target: t, ports: [{ port: 3389, protocol: 'tcp' }], sourcePrefix: '203.0.113.7/32', expiresAt: Date.UTC(2036, 10, 26, 12) });

describe('AzureGate on ARM\'s wire format (nock)', () => {
  it('writes only its own rule as a child securityRules PUT, follows Azure-AsyncOperation to Succeeded, and never re-sends the NSG', async () => {
    discovery();
    let put: { body: Record<string, unknown>; auth: string | undefined } | undefined;
    const op = operation('op-1', { status: 'Succeeded' }, 2);
    const foreign = { name: 'allow-asg', properties: { priority: 100, direction: 'Inbound', access: 'Allow', protocol: 'Tcp', sourceApplicationSecurityGroups: [{ id: `${RG}/providers/Microsoft.Network/applicationSecurityGroups/web` }], destinationAddressPrefix: '*', destinationPortRange: '443', sourcePortRange: '*' } };
    nock(ARM)
      .get(NSG).query(true).reply(200, nsgBody('W/"etag-1"', [foreign]))
      .put(rule('jit-rabcdefghj-3389')).query(true)
      .reply(function (_uri, body) {
        put = { body: body as Record<string, unknown>, auth: this.req.headers.authorization as string | undefined };
        return [201, { name: 'jit-rabcdefghj-3389', properties: { ...(body as { properties: object }).properties, provisioningState: 'Updating' } }, { 'Azure-AsyncOperation': op }];
      });
    const rules = await open(gate(), 'rabcdefghj');
    expect(put!.auth).toBe('Bearer test-token');
    expect(put!.body).toEqual({
      properties: {
        priority: 101, direction: 'Inbound', access: 'Allow', protocol: 'Tcp', sourceAddressPrefix: '203.0.113.7/32', sourcePortRange: '*',
        destinationAddressPrefix: '10.0.0.4', destinationPortRange: '3389', description: 'jit-bot request=rabcdefghj expires=2036-11-26T12:00:00.000Z',
      },
    });
    expect(rules).toHaveLength(1);
    expect(rules[0]).toMatchObject({ name: 'jit-rabcdefghj-3389', scope: NSG, priority: 101, requestId: 'rabcdefghj' });
    expect(nock.isDone()).toBe(true);
  });

  it('JIT_NSG_WRITES=auto: one whole-NSG PUT with If-Match carrying every rule as read (without read-only state) plus its own; 403 LinkedAuthorizationFailed falls back to a child rule', async () => {
    discovery();
    const foreign = { name: 'allow-https', id: `${NSG}/securityRules/allow-https`, etag: 'W/"r1"', properties: { priority: 100, direction: 'Inbound', access: 'Allow', protocol: 'Tcp', sourceAddressPrefix: '*', destinationAddressPrefix: '*', destinationPortRange: '443', sourcePortRange: '*', provisioningState: 'Succeeded' } };
    const read = { ...nsgBody('W/"e1"', [foreign]), tags: { owner: 'netops' } };
    (read.properties as Record<string, unknown>).flushConnection = true;
    let put: { body: Record<string, unknown>; ifMatch: string | undefined } | undefined;
    const op = operation('op-w', { status: 'Succeeded' });
    nock(ARM)
      .get(NSG).query(true).reply(200, read, { etag: 'W/"e1"' })
      .put(NSG).query(true)
      .reply(function (_uri, body) {
        put = { body: body as Record<string, unknown>, ifMatch: this.req.headers['if-match'] as string | undefined };
        return [200, { ...read, etag: 'W/"e2"', properties: { ...(body as { properties: object }).properties, provisioningState: 'Updating' } }, { 'Azure-AsyncOperation': op }];
      });
    const g = gate([target], 'auto');
    const rules = await open(g, 'rwholensg1');
    expect(put!.ifMatch).toBe('W/"e1"');
    const { provisioningState: _p, ...foreignProps } = foreign.properties;
    expect(put!.body).toEqual({
      location: 'westeurope',
      tags: { owner: 'netops' },
      properties: {
        flushConnection: true,
        securityRules: [
          { name: 'allow-https', properties: foreignProps },
          { name: 'jit-rwholensg1-3389', properties: { priority: 101, direction: 'Inbound', access: 'Allow', protocol: 'Tcp', sourceAddressPrefix: '203.0.113.7/32', sourcePortRange: '*', destinationAddressPrefix: '10.0.0.4', destinationPortRange: '3389', description: 'jit-bot request=rwholensg1 expires=2036-11-26T12:00:00.000Z' } },
        ],
      },
    });
    expect(rules).toMatchObject([{ name: 'jit-rwholensg1-3389', scope: NSG, priority: 101 }]);
    expect(nock.isDone()).toBe(true);

    // ARM refuses the whole write (someone's rule references an ASG the role may not join): the
    // same change goes as a child rule at once; the NSG stays on child rules.
    const asgRule = { name: 'web-asg', properties: { priority: 102, direction: 'Inbound', access: 'Allow', protocol: 'Tcp', sourceAddressPrefix: '*', sourcePortRange: '*', destinationApplicationSecurityGroups: [{ id: `${RG}/providers/Microsoft.Network/applicationSecurityGroups/web` }], destinationPortRange: '443' } };
    const ok = operation('op-child', { status: 'Succeeded' });
    nock(ARM)
      .get(NSG).query(true).reply(200, nsgBody('W/"e3"', [asgRule]))
      .put(NSG).query(true).reply(403, { error: { code: 'LinkedAuthorizationFailed', message: "The client has permission to perform action 'Microsoft.Network/networkSecurityGroups/write' on scope 'vm1-nsg', however it does not have permission to perform action 'Microsoft.Network/applicationSecurityGroups/joinNetworkSecurityRule/action' on the linked scope(s)." } })
      .get(NSG).query(true).reply(200, nsgBody('W/"e3"', [asgRule]))
      .put(rule('jit-rwholensg2-3389')).query(true).reply(201, {}, { 'Azure-AsyncOperation': ok });
    await expect(open(g, 'rwholensg2')).resolves.toMatchObject([{ name: 'jit-rwholensg2-3389', priority: 100 }]);
    expect(g.nsgFallbacks).toEqual({ LinkedAuthorizationFailed: 1 });
    expect(g.nsgBatched(NSG)).toBe(false);
    expect(g.stats.retries).toBe(0);
    expect(nock.isDone()).toBe(true);
  });

  it('an operation that ends Failed keeps ARM\'s code and fails at once (no retry, the grant rolled back); Canceled is retried', async () => {
    discovery();
    const failed = operation('op-f', { status: 'Failed', error: { code: 'InvalidResourceReference', message: 'Resource referenced by the rule was not found.' } });
    nock(ARM)
      .get(NSG).query(true).reply(200, nsgBody('W/"e1"'))
      .put(rule('jit-rabcdefghk-3389')).query(true).reply(201, {}, { 'Azure-AsyncOperation': failed })
      // The roll-back reads the NSG (ARM shows the failed rule) and deletes it.
      .get(NSG).query(true).reply(200, nsgBody('W/"e2"', [{ name: 'jit-rabcdefghk-3389', properties: { priority: 100, direction: 'Inbound', access: 'Allow', protocol: 'Tcp', description: 'jit-bot request=rabcdefghk expires=2036-11-26T12:00:00.000Z', provisioningState: 'Failed' } }]))
      .delete(rule('jit-rabcdefghk-3389')).query(true).reply(204);
    const g = gate();
    await expect(open(g, 'rabcdefghk')).rejects.toThrow(/InvalidResourceReference/);
    expect(g.stats.retries).toBe(0);
    expect(g.stats.operationsFailed).toBe(1);
    expect(nock.isDone()).toBe(true);

    const canceled = operation('op-c', { status: 'Canceled', error: { code: 'CanceledAndSupersededDueToAnotherOperation', message: 'Operation was canceled.' } });
    const ok = operation('op-ok', { status: 'Succeeded' });
    nock(ARM)
      .get(NSG).query(true).reply(200, nsgBody('W/"e3"'))
      .put(rule('jit-rabcdefghm-3389')).query(true).reply(201, {}, { 'Azure-AsyncOperation': canceled })
      .get(NSG).query(true).reply(200, nsgBody('W/"e4"'))
      .put(rule('jit-rabcdefghm-3389')).query(true).reply(201, {}, { 'Azure-AsyncOperation': ok });
    await expect(open(g, 'rabcdefghm')).resolves.toHaveLength(1);
    expect(g.stats.operationsCanceled).toBe(1);
    expect(g.stats.retries).toBe(1);
    expect(nock.isDone()).toBe(true);
  });

  it('retries AnotherOperationInProgress and 429 RetryableErrorDueToAnotherOperation; fails fast on ScopeLocked and 403, with ARM\'s code', async () => {
    discovery();
    nock(ARM)
      .get(NSG).query(true).reply(200, nsgBody('W/"e1"'))
      .put(rule('jit-rabcdefghn-3389')).query(true).reply(409, { error: { code: 'AnotherOperationInProgress', message: 'Another operation on this or dependent resource is in progress.' } })
      .get(NSG).query(true).reply(200, nsgBody('W/"e1"'))
      .put(rule('jit-rabcdefghn-3389')).query(true).reply(429, { error: { code: 'RetryableErrorDueToAnotherOperation', message: 'Operation is retryable.' } }, { 'Retry-After': '1' })
      .get(NSG).query(true).reply(200, nsgBody('W/"e1"'))
      .put(rule('jit-rabcdefghn-3389')).query(true).reply(200, { name: 'jit-rabcdefghn-3389', properties: { provisioningState: 'Succeeded' } });
    const g = gate();
    await open(g, 'rabcdefghn');
    expect(g.stats.conflicts409).toBe(1);
    expect(g.stats.throttled429).toBe(1);
    expect(g.stats.retries).toBe(2);
    expect(nock.isDone()).toBe(true);

    for (const [status, code] of [[409, 'ScopeLocked'], [403, 'AuthorizationFailed']] as const) {
      nock.cleanAll();
      nock(ARM)
        .get(NSG).query(true).reply(200, nsgBody('W/"e2"'))
        .put(rule('jit-rabcdefghp-3389')).query(true).reply(status, { error: { code, message: `${code} (test)` } })
        .get(NSG).query(true).reply(200, nsgBody('W/"e2"'));
      const before = g.stats.retries;
      await expect(open(g, 'rabcdefghp')).rejects.toThrow(new RegExp(code));
      expect(g.stats.retries).toBe(before);
    }
  });

  it('a firewall policy\'s rule collection group is written with If-Match on the PUT alone: the operation\'s polls carry none; the DNAT count reads the policy\'s other groups and its base policy\'s', async () => {
    const app2: Target = { ...target, name: tn('app2'), firewall: { policyId: POLICY, ruleCollectionGroup: 'jit', publicIp: '20.50.60.71', portPool: [51000, 51001], subnetPrefix: '10.100.0.0/26' } };
    discovery();
    const polls: Array<string | undefined> = [];
    const op = operation('op-fw', { status: 'Succeeded' }, 2, polls);
    let putIfMatch: string | undefined;
    const nsgOp = operation('op-nsg', { status: 'Succeeded' }, 0);
    const FW = `${HUB}/azureFirewalls/hub-fw`;
    const PIP = `${HUB}/publicIPAddresses/hub-fw-pip`;
    nock(ARM)
      // The route is checked first: the policy's firewalls own the public IP.
      .get(POLICY).query(true).reply(200, { id: POLICY, name: 'hub-policy', properties: { firewalls: [{ id: FW }] } })
      .get(FW).query(true).reply(200, { id: FW, name: 'hub-fw', properties: { ipConfigurations: [{ name: 'ipconfig1', properties: { publicIPAddress: { id: PIP } } }] } })
      .get(PIP).query(true).reply(200, { id: PIP, name: 'hub-fw-pip', properties: { ipAddress: '20.50.60.71' } })
      // The DNAT limit: the policy's other groups (one DNAT on the pool's first port) and its base policy's.
      .get(POLICY).query(true).reply(200, { id: POLICY, name: 'hub-policy', properties: { firewalls: [{ id: FW }], basePolicy: { id: BASE } } })
      .get(`${POLICY}/ruleCollectionGroups`).query(true).reply(200, { value: [
        { id: RCG, name: 'jit', properties: { priority: 65000, ruleCollections: [] } },
        { id: `${POLICY}/ruleCollectionGroups/apps`, name: 'apps', properties: { priority: 300, ruleCollections: [{ ruleCollectionType: 'FirewallPolicyNatRuleCollection', name: 'apps', priority: 100, action: { type: 'DNAT' }, rules: [{ ruleType: 'NatRule', name: 'a1', ipProtocols: ['TCP'], sourceAddresses: ['*'], destinationAddresses: ['20.50.60.71'], destinationPorts: ['51000'], translatedAddress: '10.0.0.9', translatedPort: '443' }] }] } },
      ] })
      .get(BASE).query(true).reply(200, { id: BASE, name: 'corp-base', properties: { childPolicies: [{ id: POLICY }] } })
      .get(`${BASE}/ruleCollectionGroups`).query(true).reply(200, { value: [] })
      .get(NSG).query(true).reply(200, nsgBody('W/"n1"'))
      .put(rule('jit-rabcdefghq-3389')).query(true).reply(201, {}, { 'Azure-AsyncOperation': nsgOp })
      .get(RCG).query(true).reply(200, { id: RCG, name: 'jit', etag: 'W/"rcg-1"', properties: { provisioningState: 'Succeeded', priority: 65000, ruleCollections: [] } })
      .put(RCG).query(true).reply(function () {
        putIfMatch = this.req.headers['if-match'] as string | undefined;
        return [200, { id: RCG, name: 'jit', properties: { provisioningState: 'Updating' } }, { 'Azure-AsyncOperation': op }];
      });
    const rules = await open(gate([app2]), 'rabcdefghq', app2);
    expect(putIfMatch).toBe('W/"rcg-1"');
    expect(polls).toEqual([undefined, undefined, undefined]);
    // 51000 is another group's DNAT destination on the same address: the next free pool port is used.
    expect(rules.find((r) => r.nat)?.nat).toEqual({ publicAddress: '20.50.60.71', publicPort: 51001, translatedPort: 3389 });
    expect(nock.isDone()).toBe(true);
  });

  it('the inventory speaks Resource Graph\'s wire format: POST with subscriptions, $top and $skipToken; a 429 that only says x-ms-user-quota-resets-after is waited out that long', async () => {
    const VM2 = `${RG}/providers/Microsoft.Compute/virtualMachines/vm2`;
    const NIC2 = `${RG}/providers/Microsoft.Network/networkInterfaces/vm2-nic`;
    const SS = `${RG}/providers/Microsoft.Compute/virtualMachineScaleSets/web`;
    const INST = `${SS}/virtualMachines/3`;
    const SSNIC = `${INST}/networkInterfaces/web-nic`;
    const ipcfg = (ip: string) => [{ id: 'x', name: 'ipconfig1', properties: { privateIPAddress: ip, primary: true, subnet: { id: SUBNET } } }];
    const bodies: Array<{ query: string; subscriptions: string[]; options: Record<string, unknown> }> = [];
    const waits: number[] = [];
    const g = new AzureGate({
      nsgWrites: 'rules',
      credential: { getToken: async () => ({ token: 'test-token', expiresOnTimestamp: Date.now() + 3600_000 }) },
      subscriptions: ['sub1'],
      targets: () => [],
      sleep: async (ms) => void waits.push(ms),
    });
    const graph = nock(ARM).post('/providers/Microsoft.ResourceGraph/resources').query({ 'api-version': '2022-10-01' }).times(5);
    graph.reply(function (_uri, body) {
      const b = body as (typeof bodies)[number];
      bodies.push(b);
      const q = b.query;
      if (q.startsWith('Resources') && q.includes('virtualmachines') && !b.options.$skipToken) {
        // The spec's first page: a string resultTruncated, a $skipToken for the rest.
        return [200, { totalRecords: 4, count: 2, resultTruncated: 'false', facets: [], $skipToken: 'page2', data: [
          { id: NIC, name: 'vm1-nic', type: 'microsoft.network/networkinterfaces', nics: null, nsg: NSG, ipConfigurations: ipcfg('10.0.0.4'), orchestrationMode: '' },
          { id: NIC2, name: 'vm2-nic', type: 'microsoft.network/networkinterfaces', nics: null, nsg: '', ipConfigurations: ipcfg('10.0.0.5'), orchestrationMode: '' },
        ] }, { 'x-ms-user-quota-remaining': '14', 'x-ms-user-quota-resets-after': '00:00:05' }];
      }
      if (q.startsWith('Resources') && q.includes('virtualmachines')) {
        if (bodies.filter((x) => x.options.$skipToken === 'page2').length === 1) return [429, { error: { code: 'RateLimiting', message: 'throttled' } }, { 'x-ms-user-quota-remaining': '0', 'x-ms-user-quota-resets-after': '00:00:03' }];
        return [200, { totalRecords: 4, count: 2, resultTruncated: 'false', facets: [], data: [
          { id: VM, name: 'vm1', type: 'microsoft.compute/virtualmachines', nics: [{ id: NIC, properties: { primary: true } }], nsg: '', ipConfigurations: null, orchestrationMode: '' },
          { id: VM2, name: 'vm2', type: 'microsoft.compute/virtualmachines', nics: [{ id: NIC2 }], nsg: '', ipConfigurations: null, orchestrationMode: '' },
          { id: SS, name: 'web', type: 'microsoft.compute/virtualmachinescalesets', nics: null, nsg: '', ipConfigurations: null, orchestrationMode: 'Uniform' },
        ] }, { 'x-ms-user-quota-remaining': '13', 'x-ms-user-quota-resets-after': '00:00:04' }];
      }
      if (q.startsWith('Resources')) return [200, { totalRecords: 1, count: 1, resultTruncated: 'false', data: [{ id: NSG, subnets: [{ id: SUBNET }] }] }];
      return [200, { totalRecords: 2, count: 2, resultTruncated: 'false', data: [
        { id: INST, name: '3', type: 'microsoft.compute/virtualmachinescalesets/virtualmachines', nics: [{ id: SSNIC }], nsg: '', ipConfigurations: null },
        { id: SSNIC, name: 'web-nic', type: 'microsoft.compute/virtualmachinescalesets/virtualmachines/networkinterfaces', nics: null, nsg: '', ipConfigurations: ipcfg('10.0.0.6') },
      ] }];
    });
    const rows = await g.inventory();
    expect(rows.map((r) => r.name).sort()).toEqual(['vm1', 'vm2', 'web_3']);
    expect(bodies.every((b) => JSON.stringify(b.subscriptions) === '["sub1"]' && b.options.$top === 1000 && b.options.resultFormat === 'objectArray')).toBe(true);
    expect(bodies.filter((b) => b.options.$skipToken === 'page2')).toHaveLength(2);
    // No Retry-After: the quota's reset (3 s) is how long the retry waited.
    expect(waits.some((w) => w >= 3000 && w < 3100)).toBe(true);
    expect(nock.isDone()).toBe(true);
  });
});
