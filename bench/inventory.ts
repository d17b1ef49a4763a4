// Benchmark: the inventory (`vms`) of a large estate against the ARM emulator (HTTPS on loopback),
// three ways over the same machines:
//   graph   — Azure Resource Graph (what `vms` does now): a few paged queries, $top 1,000, paced by
//             the service's quota (15 queries per 5 s, as documented);
//   lists   — paged ARM lists per subscription (VMs, NICs, virtual networks, scale sets, two more
//             per Uniform scale set): the fallback, and what `vms` did before Resource Graph;
//   per-vm  — a GET of each VM, its NICs and their subnets (what `vms` did at main 0aca6c7,
//             issue 23's point 5), under the same read concurrency cap (8).
// Figures: ARM calls (Resource Graph requests counted apart), wall time, machines listed (the
// three must agree).
//
//   npm run bench:inventory                       (10,000 machines, lists paged by 1,000)
//   BENCH_INVENTORY_VMS=2000 BENCH_ARM_READ_MS=50 BENCH_LIST_PAGE=50 npm run bench:inventory
//   BENCH_INVENTORY_PER_VM=0 …                    (skip the slow per-VM run)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { AzureGate } from '../src/adapters/azure/gate.js';
import { ArmEmulator } from '../test/fakes/arm.js';

const MACHINES = Number(process.env.BENCH_INVENTORY_VMS ?? 10_000);
/** How long every read takes to answer (a GET, a list page, a Resource Graph page). */
const READ_MS = Number(process.env.BENCH_ARM_READ_MS ?? 0);
/** Items per page of an ARM list (the emulator's default is 50; ARM's page sizes vary by provider). */
const LIST_PAGE = Number(process.env.BENCH_LIST_PAGE ?? 1000);
const PER_VM = process.env.BENCH_INVENTORY_PER_VM !== '0';
const RGS = 20;
const SCALE_SETS = 20;
const INSTANCES = 10;
const credential = { getToken: async () => ({ token: 'bench', expiresOnTimestamp: Date.now() + 3600_000 }) };

async function main() {
  const arm = await new ArmEmulator({ pageSize: LIST_PAGE, readLatencyMs: READ_MS }).start();
  // Standalone VMs (a NIC NSG each, a subnet NSG per resource group) and Uniform scale sets.
  const standalone = MACHINES - SCALE_SETS * INSTANCES;
  const ids: string[] = [];
  for (let i = 0; i < standalone; i++) ids.push(arm.standardVm('bench', `rg${i % RGS}`, `vm${i}`, `10.${i % RGS}.${(i >> 8) & 255}.${i & 255}`).vm);
  for (let s = 0; s < SCALE_SETS; s++) {
    const base = `/subscriptions/bench/resourceGroups/rg${s % RGS}/providers`;
    const nsg = arm.addNsg(`${base}/Microsoft.Network/networkSecurityGroups/ss${s}-nsg`);
    const subnet = `${base}/Microsoft.Network/virtualNetworks/rg${s % RGS}-vnet/subnets/default`;
    ids.push(...arm.addScaleSet(`${base}/Microsoft.Compute/virtualMachineScaleSets/ss${s}`, Array.from({ length: INSTANCES }, (_, k) => `10.200.${s}.${k + 4}`), subnet, nsg));
  }
  const gate = () =>
    new AzureGate({ credential, endpoint: arm.url, caCert: readFileSync(arm.certFile, 'utf8'), pollIntervalMs: 50, readDeadlineMs: 600_000, subscriptions: ['bench'], targets: () => [] });

  const runs: Array<{ how: string; armCalls: number; graphCalls: number; ms: number; emulatorGraphMs: number; listed: number; throttled: number; quotaWaits: number }> = [];
  const measure = async (how: string, run: (g: AzureGate) => Promise<number>) => {
    const g = gate();
    const calls = arm.calls.length;
    const graph = arm.stats.graphQueries;
    const throttled = arm.stats.graphThrottled429;
    const evalMs = arm.graphEvalMs;
    const t0 = performance.now();
    const listed = await run(g);
    const ms = performance.now() - t0;
    const graphCalls = arm.stats.graphQueries - graph;
    const r = { how, armCalls: arm.calls.length - calls - graphCalls, graphCalls, ms, emulatorGraphMs: arm.graphEvalMs - evalMs, listed, throttled: arm.stats.graphThrottled429 - throttled, quotaWaits: g.stats.graphQuotaWaits };
    runs.push(r);
    console.log(
      `${how}: ${r.listed} machines listed, ${r.armCalls} ARM calls + ${r.graphCalls} Resource Graph requests (${r.throttled} × 429, ${r.quotaWaits} quota waits), ${(ms / 1000).toFixed(2)} s` +
        (r.emulatorGraphMs > 0 ? ` (of which the emulator evaluating the queries: ${(r.emulatorGraphMs / 1000).toFixed(2)} s)` : ''),
    );
  };

  await measure('graph', async (g) => (await g.inventory()).length);
  arm.resourceGraphEnabled = false;
  // The fallback path, as `vms` ran before Resource Graph (the refused Resource Graph request is counted apart).
  await measure('lists', async (g) => (await g.inventory()).length);
  arm.resourceGraphEnabled = true;
  if (PER_VM) {
    await measure('per-vm', async (g) => {
      const found = await Promise.all(ids.map((id) => g.discover({ name: id.split('/').pop()!, id, os: 'linux' }, true).then(() => 1, () => 0)));
      return found.reduce((a: number, b: number) => a + b, 0);
    });
  }
  await arm.close();
  const listed = new Set(runs.map((r) => r.listed));
  if (listed.size !== 1 || !listed.has(MACHINES)) throw new Error(`the runs disagree on the machines: ${runs.map((r) => `${r.how} ${r.listed}`).join(', ')}`);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL(`./results/inventory-${Date.now()}.json`, import.meta.url), JSON.stringify({ machines: MACHINES, readMs: READ_MS, listPage: LIST_PAGE, node: process.version, runs }, null, 2));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
