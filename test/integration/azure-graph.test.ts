// The Azure gate's inventory on Azure Resource Graph, against the ARM emulator's Resource Graph
// endpoint (HTTPS on 127.0.0.1, served from the emulator's own state): paging by $skipToken, the
// per-user quota and its headers, 429 RateLimiting, Uniform scale-set instances from
// ComputeResources, what happens where Resource Graph falls short (a table missing, rows not
// indexed yet), and the emulator refusing what the real service refuses. No Redis: the gate alone.
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { AzureGate } from '../../src/adapters/azure/gate.js';
import { ArmEmulator, type ArmEmulatorOptions } from '../fakes/arm.js';
import { tn } from '../fixtures/ids.js';

const SS = '/subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachineScaleSets/web';
let em: ArmEmulator | undefined;

afterEach(async () => {
  await em?.close();
  em = undefined;
});

/**
 * An estate: `n` VMs with a NIC NSG and a subnet NSG in two resource groups, a VM whose NIC and
 * subnet have no NSG, and a Uniform scale set of three instances (their NICs under the scale set,
 * with the scale set's NSG and the prod subnet's).
 */
async function estate(n: number, opts: ArmEmulatorOptions = {}) {
  em = await new ArmEmulator(opts).start();
  const vms = Array.from({ length: n }, (_, i) => em!.standardVm('sub1', i % 2 ? 'prod' : 'dev', `vm${i}`, `10.0.${i % 2}.${10 + i}`));
  const base = '/subscriptions/sub1/resourceGroups/prod/providers';
  const bare = em.addSubnet(`${base}/Microsoft.Network/virtualNetworks/bare-vnet/subnets/default`, '10.9.0.0/24');
  em.addVm(`${base}/Microsoft.Compute/virtualMachines/bare1`, [em.addNic(`${base}/Microsoft.Network/networkInterfaces/bare1-nic`, [{ ip: '10.9.0.4', subnet: bare }])]);
  const ssNsg = em.addNsg(`${base}/Microsoft.Network/networkSecurityGroups/web-nsg`);
  const instances = em.addScaleSet(SS, ['10.0.1.200', '10.0.1.201', '10.0.1.202'], vms[1]!.subnet, ssNsg);
  const gate = new AzureGate({
    credential: { getToken: async () => ({ token: 'graph-test', expiresOnTimestamp: Date.now() + 3600_000 }) },
    endpoint: em.url,
    caCert: readFileSync(em.certFile, 'utf8'),
    pollIntervalMs: 5,
    targets: () => [{ name: tn('vm0'), id: vms[0]!.vm, os: 'linux' }],
  });
  return { em, gate, vms, instances };
}

const names = (rows: Array<{ name: string; reason?: string }>) => rows.map((r) => (r.reason ? `${r.name}: ${r.reason}` : r.name)).sort();
const expected = (n: number) => [...Array.from({ length: n }, (_, i) => `vm${i}`), 'bare1: no network security group on its network interfaces or subnets', 'web_0', 'web_1', 'web_2'].sort();
/** ARM calls other than the Resource Graph endpoint. */
const armCalls = (e: ArmEmulator) => e.calls.filter((c) => !/\/providers\/Microsoft\.ResourceGraph\//i.test(c.path));

describe('inventory from Azure Resource Graph', () => {
  it('pages through every row ($skipToken), waits out a 429 RateLimiting, lists Uniform scale-set instances with their NSG, and makes no other ARM call', async () => {
    const { em, gate } = await estate(12, { graphPageSize: 4 });
    em.throttleGraph(1, 1);
    const rows = await gate.inventory();
    expect(names(rows)).toEqual(expected(12));
    expect(em.stats.graphThrottled429).toBe(1);
    expect(gate.stats.readRetries).toBe(1);
    // 12 VMs + 13 NICs + 1 scale set at 4 rows a page; every later page sent the token of the one before.
    const pages = em.graphRequests.filter((r) => String(r.body.query).includes("'microsoft.compute/virtualmachines'"));
    const tokens = pages.map((r) => (r.body.options as { $skipToken?: unknown }).$skipToken).filter((t): t is string => typeof t === 'string');
    expect(new Set(tokens).size).toBe(Math.ceil(26 / 4) - 1);
    expect(em.graphRequests.every((r) => r.apiVersion === '2022-10-01' && JSON.stringify(r.body.subscriptions) === '["sub1"]')).toBe(true);
    expect(armCalls(em)).toEqual([]);
  });

  it('keeps the user quota: more pages than the quota allows are paced by x-ms-user-quota-remaining / -resets-after, never refused', async () => {
    const { em, gate } = await estate(10, { graphPageSize: 2, graphQuota: { queries: 4, windowMs: 2000 } });
    const rows = await gate.inventory();
    expect(names(rows)).toEqual(expected(10));
    // 12 queries against 4 per window: at least one wait for the reset, and no query refused.
    expect(em.stats.graphQueries).toBeGreaterThan(8);
    expect(em.stats.graphThrottled429).toBe(0);
    expect(gate.stats.graphQuotaWaits).toBeGreaterThanOrEqual(1);
  });

  it('where Resource Graph has no ComputeResources table, each Uniform scale set is listed through ARM (its instances and their NICs)', async () => {
    const { em, gate } = await estate(3, { graphTables: ['resources'] });
    const rows = await gate.inventory();
    expect(names(rows)).toEqual(expected(3));
    expect(armCalls(em).map((c) => c.path).sort()).toEqual([`${SS}/networkInterfaces`, `${SS}/virtualMachines`]);
  });

  it('a VM whose NIC Resource Graph has not indexed yet (it lags ARM) is read from ARM, not reported without a network path', async () => {
    const { em, gate, vms } = await estate(3);
    em.hideFromGraph(vms[2]!.nic);
    const rows = await gate.inventory();
    expect(names(rows)).toEqual(expected(3));
    expect(armCalls(em).map((c) => c.path)).toEqual(expect.arrayContaining([vms[2]!.vm, vms[2]!.nic]));
    expect(armCalls(em).some((c) => c.path === vms[1]!.vm)).toBe(false);
  });

  it('rows the identity may not read are not returned (Resource Graph needs no role action of its own; it filters by each resource\'s read)', async () => {
    const { em, gate } = await estate(4, { assignedScopes: ['/subscriptions/sub1/resourceGroups/dev'] });
    const rows = await gate.inventory();
    expect(names(rows)).toEqual(['vm0', 'vm2']);
    expect(em.stats.forbidden403).toBe(0);
  });
});

describe('the emulator\'s Resource Graph is as strict as the service', () => {
  const post = (e: ArmEmulator, body: unknown, apiVersion: string | null = '2022-10-01') =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: Record<string, unknown> }>((resolve, reject) => {
      const q = apiVersion ? `?api-version=${apiVersion}` : '';
      const req = request(`${e.url}/providers/Microsoft.ResourceGraph/resources${q}`, { method: 'POST', ca: readFileSync(e.certFile), headers: { authorization: 'Bearer raw-client', 'content-type': 'application/json' } }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: b ? (JSON.parse(b) as Record<string, unknown>) : {} }));
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  const code = (r: { json: Record<string, unknown> }) => {
    const err = r.json.error as { code: string; details?: Array<{ code: string }> } | undefined;
    return [err?.code, ...(err?.details ?? []).map((d) => d.code)].filter((c) => c !== 'Detail').join(' ');
  };
  const VMS = "Resources | where type =~ 'microsoft.compute/virtualmachines' | project id, name | order by id asc";

  it('refuses what the service refuses, pages only results that project id, and keeps a $skipToken to its own query', async () => {
    const { em } = await estate(6, { graphPageSize: 4 });
    expect(code(await post(em, { subscriptions: ['sub1'], query: VMS }, null))).toBe('MissingApiVersionParameter');
    expect(code(await post(em, { subscriptions: ['sub1'], query: VMS }, '2099-01-01'))).toBe('NoRegisteredProviderFound');
    expect(code(await post(em, { subscriptions: ['sub1'] }))).toBe('BadRequest InvalidQuery');
    expect(code(await post(em, { subscriptions: 'sub1', query: VMS }))).toBe('BadRequest InvalidQuery');
    expect(code(await post(em, { subscriptions: ['sub1'], query: VMS, options: { $top: 5000 } }))).toBe('BadRequest InvalidQuery');
    expect(code(await post(em, { subscriptions: ['sub1'], query: 'VirtualMachines | project id' }))).toBe('BadRequest InvalidQuery UnknownTable');
    expect(code(await post(em, { subscriptions: ['sub1'], query: "Resources | where type =~ 'x' | summarize count()" }))).toBe('BadRequest InvalidQuery ParserFailure');
    // Types are lower-case in Resource Graph: a case-sensitive match on ARM's spelling finds nothing.
    expect((await post(em, { subscriptions: ['sub1'], query: "Resources | where type == 'Microsoft.Compute/virtualMachines' | project id" })).json.totalRecords).toBe(0);

    const first = await post(em, { subscriptions: ['sub1'], query: VMS, options: { $top: 1000 } });
    expect(first.status).toBe(200);
    expect([first.json.totalRecords, first.json.count, first.json.resultTruncated]).toEqual([7, 4, 'false']);
    expect(first.headers['x-ms-user-quota-remaining']).toMatch(/^\d+$/);
    expect(first.headers['x-ms-user-quota-resets-after']).toMatch(/^\d\d:\d\d:\d\d$/);
    const token = first.json.$skipToken as string;
    const second = await post(em, { subscriptions: ['sub1'], query: VMS, options: { $top: 1000, $skipToken: token } });
    expect([second.json.count, second.json.$skipToken]).toEqual([3, undefined]);
    const ids = [...(first.json.data as Array<{ id: string }>), ...(second.json.data as Array<{ id: string }>)].map((r) => r.id);
    expect(ids).toEqual([...ids].sort());
    expect(code(await post(em, { subscriptions: ['sub1'], query: "Resources | where type =~ 'microsoft.network/networkinterfaces' | project id", options: { $skipToken: token } }))).toBe('BadRequest InvalidQuery InvalidSkipToken');
    // Without an id column the service cannot page: the result is cut, with no token.
    const unpaged = await post(em, { subscriptions: ['sub1'], query: "Resources | where type =~ 'microsoft.compute/virtualmachines' | project name" });
    expect([unpaged.json.count, unpaged.json.resultTruncated, unpaged.json.$skipToken]).toEqual([4, 'true', undefined]);
  });

  it('answers 429 RateLimiting with the quota headers once the quota is spent, and serves again after the reset', async () => {
    const { em } = await estate(2, { graphQuota: { queries: 2, windowMs: 800 } });
    for (let i = 0; i < 2; i++) expect((await post(em, { subscriptions: ['sub1'], query: VMS })).status).toBe(200);
    const refused = await post(em, { subscriptions: ['sub1'], query: VMS });
    expect([refused.status, code(refused)]).toEqual([429, 'RateLimiting RateLimiting']);
    expect(refused.headers['x-ms-user-quota-remaining']).toBe('0');
    expect(refused.headers['retry-after']).toMatch(/^\d+$/);
    await new Promise((r) => setTimeout(r, Number(refused.headers['retry-after']) * 1000));
    expect((await post(em, { subscriptions: ['sub1'], query: VMS })).status).toBe(200);
  });
});
