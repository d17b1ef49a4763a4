// The Azure gate against ARM's real wire format at https://management.azure.com, intercepted with
// nock: 201 + Azure-AsyncOperation polled to Succeeded, ETag / If-Match, error bodies with
// code/message. No network, no Redis (the per-NSG lock is in-process here).
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AzureGate } from '../../src/adapters/azure/gate.js';
import type { Target } from '../../src/core/types.js';

const ARM = 'https://management.azure.com';
const RG = '/subscriptions/sub1/resourceGroups/prod';
const VM = `${RG}/providers/Microsoft.Compute/virtualMachines/vm1`;
const NIC = `${RG}/providers/Microsoft.Network/networkInterfaces/vm1-nic`;
const SUBNET = `${RG}/providers/Microsoft.Network/virtualNetworks/prod-vnet/subnets/default`;
const NSG = `${RG}/providers/Microsoft.Network/networkSecurityGroups/vm1-nsg`;
const target: Target = { name: 'vm1', id: VM, os: 'windows' };

const nsgBody = (etag: string, rules: unknown[] = []) => ({
  id: NSG, name: 'vm1-nsg', type: 'Microsoft.Network/networkSecurityGroups', location: 'westeurope', etag,
  properties: { provisioningState: 'Succeeded', securityRules: rules, defaultSecurityRules: [] },
});

function discovery() {
  nock(ARM)
    .get(VM).query(true)
    .reply(200, { id: VM, name: 'vm1', location: 'westeurope', properties: { networkProfile: { networkInterfaces: [{ id: NIC, properties: { primary: true } }] } } })
    .get(NIC).query(true)
    .reply(200, { id: NIC, name: 'vm1-nic', properties: { ipConfigurations: [{ id: `${NIC}/ipConfigurations/ipconfig1`, name: 'ipconfig1', properties: { privateIPAddress: '10.0.0.4', subnet: { id: SUBNET } } }], networkSecurityGroup: { id: NSG } } })
    .get(SUBNET).query(true)
    .reply(200, { id: SUBNET, name: 'default', properties: { addressPrefix: '10.0.0.0/24' } });
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

const gate = () =>
  new AzureGate({
    credential: { getToken: async () => ({ token: 'test-token', expiresOnTimestamp: Date.now() + 3600_000 }) },
    pollIntervalMs: 1,
    writeDeadlineMs: 5000,
    targets: () => [target],
    sleep: async () => {},
  });

describe('AzureGate on ARM\'s wire format (nock)', () => {
  it('PUTs the NSG with If-Match, follows Azure-AsyncOperation to Succeeded, and writes the rule as ARM expects', async () => {
    discovery();
    let put: { body: Record<string, unknown>; ifMatch: string | undefined; auth: string | undefined } | undefined;
    const op = `${ARM}/subscriptions/sub1/providers/Microsoft.Network/locations/westeurope/operations/op-1?api-version=2024-05-01`;
    nock(ARM)
      .get(NSG).query(true).reply(200, nsgBody('W/"etag-1"'))
      .put(NSG).query(true)
      .reply(function (_uri, body) {
        put = { body: body as Record<string, unknown>, ifMatch: this.req.headers['if-match'] as string | undefined, auth: this.req.headers.authorization as string | undefined };
        return [201, { ...nsgBody('W/"etag-2"', (body as { properties: { securityRules: unknown[] } }).properties.securityRules), properties: { provisioningState: 'Updating' } }, { 'Azure-AsyncOperation': op }];
      })
      .get('/subscriptions/sub1/providers/Microsoft.Network/locations/westeurope/operations/op-1').query(true).reply(200, { status: 'InProgress' })
      .get('/subscriptions/sub1/providers/Microsoft.Network/locations/westeurope/operations/op-1').query(true).reply(200, { status: 'Succeeded' })
      .get(NSG).query(true).reply(200, nsgBody('W/"etag-2"'));
    const rules = await gate().open({ requestId: 'rabcdefghj', target, ports: [{ port: 3389, protocol: 'tcp' }], sourcePrefix: '203.0.113.7/32', expiresAt: Date.UTC(2036, 10, 26, 12) });
    expect(put!.ifMatch).toBe('W/"etag-1"');
    expect(put!.auth).toBe('Bearer test-token');
    expect(put!.body).toMatchObject({
      location: 'westeurope',
      properties: {
        securityRules: [
          {
            name: 'jit-rabcdefghj-3389',
            properties: {
              priority: 100, direction: 'Inbound', access: 'Allow', protocol: 'Tcp', sourceAddressPrefix: '203.0.113.7/32', sourcePortRange: '*',
              destinationAddressPrefix: '10.0.0.4', destinationPortRange: '3389', description: 'jit-bot request=rabcdefghj expires=2036-11-26T12:00:00.000Z',
            },
          },
        ],
      },
    });
    expect(rules).toHaveLength(1);
    expect(rules[0]).toMatchObject({ name: 'jit-rabcdefghj-3389', scope: NSG, priority: 100, requestId: 'rabcdefghj' });
    expect(nock.isDone()).toBe(true);
  });

  it('reads error bodies (code/message): 409 AnotherOperationInProgress is retried, 403 fails at once with ARM\'s code', async () => {
    discovery();
    nock(ARM)
      .get(NSG).query(true).reply(200, nsgBody('W/"e1"'))
      .put(NSG).query(true).reply(409, { error: { code: 'AnotherOperationInProgress', message: 'Another operation on this or dependent resource is in progress.' } })
      .get(NSG).query(true).reply(200, nsgBody('W/"e1"'))
      .put(NSG).query(true).reply(200, nsgBody('W/"e2"'))
      .get(NSG).query(true).reply(200, nsgBody('W/"e2"'));
    const g = gate();
    await g.open({ requestId: 'rabcdefghk', target, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: '*', expiresAt: Date.now() + 60_000 });
    expect(g.stats.conflicts409).toBe(1);
    expect(g.stats.retries).toBe(1);

    nock.cleanAll();
    nock(ARM)
      .get(NSG).query(true).reply(200, nsgBody('W/"e2"'))
      .put(NSG).query(true).reply(403, { error: { code: 'AuthorizationFailed', message: "The client does not have authorization to perform action 'Microsoft.Network/networkSecurityGroups/write'." } })
      .get(NSG).query(true).reply(200, nsgBody('W/"e2"'));
    await expect(g.open({ requestId: 'rabcdefghm', target, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: '*', expiresAt: Date.now() + 60_000 })).rejects.toThrow(/authorization/i);
  });

  it('writes back the NSG\'s own settings (flushConnection) untouched, so revocation keeps established connections as its owner chose', async () => {
    discovery();
    let body: { properties?: { flushConnection?: boolean } } = {};
    const withFlush = { ...nsgBody('W/"f1"'), properties: { ...nsgBody('W/"f1"').properties, flushConnection: true } };
    nock(ARM)
      .get(NSG).query(true).reply(200, withFlush)
      .put(NSG).query(true).reply((_uri, b) => ((body = b as typeof body), [200, withFlush]))
      .get(NSG).query(true).reply(200, withFlush);
    await gate().open({ requestId: 'rabcdefghn', target, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: '*', expiresAt: Date.now() + 60_000 });
    expect(body.properties?.flushConnection).toBe(true);
  });
});
