// Benchmark: a burst of grants on ONE network security group, against the ARM emulator (HTTPS on
// loopback, each write keeps the NSG busy for BENCH_ARM_LATENCY_MS as ARM does), comparing
// jit-bot's writer in both modes — JIT_NSG_WRITES=auto (every change queued for the NSG in one
// whole-NSG PUT, the role with networkSecurityGroups/write) and =rules (its own rules as child
// operations, serialized per NSG) — with a naive one-whole-NSG-PUT-per-grant writer in the same run.
// Figures: ARM writes issued, 409s / 412s seen, time until every grant is open.
//
//   npm run bench:nsg                        (1,000 grants, 20 ms per ARM write)
//   BENCH_NSG_GRANTS=200 BENCH_ARM_LATENCY_MS=100 npm run bench:nsg
import { mkdirSync, writeFileSync } from 'node:fs';
import { NetworkManagementClient, type SecurityRule } from '@azure/arm-network';
import { AzureGate, errorInfo } from '../src/adapters/azure/gate.js';
import type { Target } from '../src/core/types.js';
import { ArmEmulator } from '../test/fakes/arm.js';
import { targetName } from '../src/core/ids.js';

const N = Number(process.env.BENCH_NSG_GRANTS ?? 1000);
const LATENCY = Number(process.env.BENCH_ARM_LATENCY_MS ?? 20);
const NAIVE_DEADLINE_S = Number(process.env.BENCH_NAIVE_DEADLINE_S ?? 120);
const credential = { getToken: async () => ({ token: 'bench', expiresOnTimestamp: Date.now() + 3600_000 }) };

function world(arm: ArmEmulator, name: string): { target: Target; nsg: string } {
  const base = `/subscriptions/bench/resourceGroups/${name}/providers`;
  const subnet = arm.addSubnet(`${base}/Microsoft.Network/virtualNetworks/vnet/subnets/default`, '10.0.0.0/16');
  const nsg = arm.addNsg(`${base}/Microsoft.Network/networkSecurityGroups/${name}-nsg`);
  const nic = arm.addNic(`${base}/Microsoft.Network/networkInterfaces/${name}-nic`, [{ ip: '10.0.0.4', subnet }], nsg);
  const vm = arm.addVm(`${base}/Microsoft.Compute/virtualMachines/${name}`, [nic]);
  return { target: { name: targetName(name), id: vm, os: 'linux' }, nsg };
}

const rid = (i: number) => `r${i.toString(36).padStart(9, '0')}`;

async function main() {
  // The naive writer PUTs the whole NSG, which the bot's role does not allow: give the emulator's
  // role that action too.
  const role = (JSON.parse((await import('node:fs')).readFileSync(new URL('../manifest/azure/jit-bot-role.json', import.meta.url), 'utf8')) as { Actions: string[] }).Actions;
  const arm = await new ArmEmulator({ latencyMs: LATENCY, roleActions: [...role, 'Microsoft.Network/networkSecurityGroups/write'] }).start();

  // jit-bot's writer, in each mode, on an NSG of its own.
  const runOurs = async (mode: 'auto' | 'rules') => {
    const ours = world(arm, `ours-${mode}`);
    const gate = new AzureGate({ credential, endpoint: arm.url, caCert: (await import('node:fs')).readFileSync(arm.certFile, 'utf8'), pollIntervalMs: Math.max(1, Math.floor(LATENCY / 2)), priorityRange: [100, 100 + N - 1], writeDeadlineMs: 600_000, targets: () => [ours.target], nsgWrites: mode });
    await gate.discover(ours.target);
    const before = { ...arm.stats };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: N }, (_, i) => gate.open({ requestId: rid(i), target: ours.target, ports: [{ port: 22, protocol: 'tcp' }], sourcePrefix: `198.18.${i >> 8}.${i & 255}/32`, expiresAt: Date.now() + 3600_000 })));
    const ms = performance.now() - t0;
    return { puts: arm.stats.puts - before.puts, c409: arm.stats.conflicts409 - before.conflicts409, c412: arm.stats.preconditionFailed412 - before.preconditionFailed412, ms, open: arm.rules(ours.nsg).length };
  };
  const batched = await runOurs('auto');
  const rules = await runOurs('rules');

  // Naive: each grant reads the NSG and PUTs it with its one rule, retrying conflicts with jitter.
  const naive = world(arm, 'naive');
  const id = { rg: 'naive', name: 'naive-nsg' };
  const client = new NetworkManagementClient(credential, 'bench', { endpoint: arm.url, credentialScopes: [`${arm.url}/.default`], retryOptions: { maxRetries: 0 }, tlsOptions: { ca: (await import('node:fs')).readFileSync(arm.certFile, 'utf8') } });
  const nb = { ...arm.stats };
  const t1 = performance.now();
  const deadline = Date.now() + NAIVE_DEADLINE_S * 1000;
  let gaveUp = 0;
  await Promise.all(
    Array.from({ length: N }, async (_, i) => {
      for (;;) {
        if (Date.now() > deadline) return void gaveUp++;
        try {
          const cur = await client.networkSecurityGroups.get(id.rg, id.name);
          const used = new Set((cur.securityRules ?? []).map((r) => r.priority));
          let priority = 100;
          while (used.has(priority)) priority++;
          const rule: SecurityRule = { name: `jit-${rid(i)}-22`, priority, direction: 'Inbound', access: 'Allow', protocol: 'Tcp', sourceAddressPrefix: '*', sourcePortRange: '*', destinationAddressPrefix: '10.0.0.4', destinationPortRange: '22' };
          await client.networkSecurityGroups.beginCreateOrUpdateAndWait(id.rg, id.name, { location: cur.location, securityRules: [...(cur.securityRules ?? []), rule] }, { updateIntervalInMs: Math.max(1, Math.floor(LATENCY / 2)), requestOptions: { customHeaders: { 'If-Match': cur.etag ?? '*' } } });
          return;
        } catch (err) {
          const info = errorInfo(err);
          if (info.status !== undefined && info.status !== 409 && info.status !== 412 && info.status !== 400 && info.status !== 429 && info.status < 500) throw err;
          await new Promise((r) => setTimeout(r, 50 + Math.random() * 200));
        }
      }
    }),
  );
  const naiveMs = performance.now() - t1;
  const naiveStats = { puts: arm.stats.puts - nb.puts, c409: arm.stats.conflicts409 - nb.conflicts409, c412: arm.stats.preconditionFailed412 - nb.preconditionFailed412, c400: arm.stats.ruleConflicts400 - nb.ruleConflicts400 };
  const naiveRules = arm.rules(naive.nsg).length;

  console.log(`NSG burst: ${N} grants on one NSG, ARM write latency ${LATENCY} ms`);
  console.log(`jit-bot JIT_NSG_WRITES=auto (whole-NSG PUT per batch): ${batched.puts} PUTs, ${batched.c409} x 409, ${batched.c412} x 412, ${batched.open} of ${N} open in ${(batched.ms / 1000).toFixed(2)} s`);
  console.log(`jit-bot JIT_NSG_WRITES=rules (child rules, serialized per NSG): ${rules.puts} PUTs, ${rules.c409} x 409, ${rules.c412} x 412, ${rules.open} of ${N} open in ${(rules.ms / 1000).toFixed(2)} s`);
  console.log(`naive one-PUT-per-grant: ${naiveStats.puts} PUTs, ${naiveStats.c409} x 409, ${naiveStats.c412} x 412, ${naiveStats.c400} x 400, ${naiveRules} of ${N} open in ${(naiveMs / 1000).toFixed(2)} s${gaveUp ? ` (${gaveUp} gave up at the ${NAIVE_DEADLINE_S} s deadline)` : ''}`);
  console.log(`writes ratio jit/naive: auto ${(batched.puts / naiveStats.puts).toFixed(4)}, rules ${(rules.puts / naiveStats.puts).toFixed(4)} (goal: 0 x 409, all open, <= 1/20 of the writes)`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/nsg-burst.json', JSON.stringify({ at: new Date().toISOString(), grants: N, latencyMs: LATENCY, batched, rules, naive: { ...naiveStats, ms: naiveMs, open: naiveRules, gaveUp } }, null, 2));
  await arm.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
