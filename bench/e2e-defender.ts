// The Defender for Cloud mode of the end-to-end bench (npm run bench:e2e:defender); bench/e2e-arm.ts is the NSG mode with early close.
// Benchmark: end to end with modelled ARM latency. The real server (startJit with
// JIT_NETWORK=azure, Redis, BullMQ) against the ARM emulator where every NSG write takes
// BENCH_ARM_LATENCY_MS (default 5,000 ms) to complete, as Azure's do. Figures:
//   request → port open (from the approver's click to the rules on both NSGs of the path),
//   expiry → port closed (from the stored expiry to the rules gone),
// to set beside "about a minute" that Defender for Cloud's JIT takes to apply a request.
//
//   npm run bench:e2e                       (20 grants, 5 s per ARM write, 30 s grants)
//   BENCH_E2E_GRANTS=5 BENCH_ARM_LATENCY_MS=2000 npm run bench:e2e
//
// BENCH_NETWORK=defender (npm run bench:e2e:defender) runs the same with JIT_NETWORK=defender
// against the emulated Security API: each grant is a Defender for Cloud initiate that Defender
// (emulated) applies after BENCH_ARM_LATENCY_MS; the bot counts it open once the policy shows the
// request Initiated. Defender keeps one request per VM port, so the grants go to N VMs, one each.
// Only a real tenant shows Defender's own apply time: this measures the bot's part around it.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisAuditLog } from '../src/adapters/redis/audit.js';
import { startJit } from '../src/bootstrap.js';
import { silentLogger } from '../src/log.js';
import { deleteKeys } from '../test/integration/harness.js';
import { summary } from './lib.js';
import { ArmEmulator } from '../test/fakes/arm.js';
import { DefenderEmulator } from '../test/fakes/defender.js';
import { TEST_POLICY_YAML } from '../test/fixtures/book.js';
import { principalId as p } from '../src/core/ids.js';

const N = Number(process.env.BENCH_E2E_GRANTS ?? 20);
const LATENCY = Number(process.env.BENCH_ARM_LATENCY_MS ?? 5000);
const DURATION_S = Number(process.env.BENCH_E2E_DURATION_S ?? 30);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const NETWORK = process.env.BENCH_NETWORK === 'defender' ? 'defender' : 'azure';


async function main() {
  const arm = await new ArmEmulator({ latencyMs: LATENCY, ...(NETWORK === 'defender' ? { roleActions: (JSON.parse(readFileSync('manifest/azure/jit-bot-defender-role.json', 'utf8')) as { Actions: string[] }).Actions } : {}) }).start();
  const vm1 = arm.standardVm('sub1', 'prod', 'vm1', '10.0.0.4');
  // Defender mode: one VM per grant (bench1…benchN), all in one JIT policy.
  const defender = NETWORK === 'defender' ? new DefenderEmulator(arm, { latencyMs: LATENCY }) : undefined;
  const benchVms = defender ? Array.from({ length: N }, (_, i) => arm.standardVm('sub1', 'prod', `bench${i + 1}`, `10.0.1.${i + 1}`)) : [];
  defender?.addPolicy('/subscriptions/sub1/resourceGroups/prod', benchVms.map((v) => ({ id: v.vm, ports: [{ number: 3389, protocol: '*' as const, allowedSourceAddressPrefix: '*', maxRequestAccessDuration: 'PT3H' }] })));
  const dir = mkdtempSync(join(tmpdir(), 'jit-bench-e2e-'));
  writeFileSync(join(dir, 'policy.yaml'), TEST_POLICY_YAML);
  const prefix = `bench-e2e-${Date.now().toString(36)}`;
  const jit = await startJit({
    env: {
      PORT: '0', HOST: '127.0.0.1', REDIS_URL, JIT_KEY_PREFIX: prefix, JIT_REQUEST_RATE: 'off', JIT_MAX_ACTIVE_PER_PRINCIPAL: '0', JIT_MAX_ACTIVE_PER_TARGET: '0', JIT_DATA_DIR: dir, JIT_POLICY_FILE: join(dir, 'policy.yaml'), JIT_MIN_DURATION: '1s',
      JIT_NETWORK: NETWORK, AZURE_SUBSCRIPTION_ID: 'sub1', AZURE_ARM_ENDPOINT: arm.url, AZURE_ARM_CA_FILE: arm.certFile, AZURE_ACCESS_TOKEN: 'bench',
      AZURE_POLL_INTERVAL_MS: process.env.AZURE_POLL_INTERVAL_MS ?? '500', AZURE_WRITE_DEADLINE: '120s',
    },
    log: silentLogger,
  });
  const vmOf = new Map<string, string>();
  const open = (id: string) =>
    defender ? defender.openRules(vmOf.get(id)!).length === 2 : [vm1.nicNsg, vm1.subnetNsg].every((nsg) => arm.rules(nsg).some((r) => r.name.startsWith(`jit-${id}-`)));
  const closed = (id: string) =>
    defender ? defender.openRules(vmOf.get(id)!).length === 0 : [vm1.nicNsg, vm1.subnetNsg].every((nsg) => !arm.rules(nsg).some((r) => r.name.startsWith(`jit-${id}-`)));

  const ids: string[] = [];
  for (let i = 0; i < N; i++) {
    const r = await jit.service.execute(p('alice@contoso.com'), `rdp ${defender ? `bench${i + 1}` : 'vm1'} ${DURATION_S}s from 203.0.113.${i + 1}`, { via: 'bench' });
    if (!('request' in r)) throw new Error(JSON.stringify(r));
    ids.push(r.request.id);
    vmOf.set(r.request.id, r.request.targetId);
  }
  // Approvals arrive a second apart, as people click.
  const openMs: number[] = [];
  const approvals = ids.map(async (id, i) => {
    await new Promise((r) => setTimeout(r, i * 1000));
    const t0 = Date.now();
    // The approve call returns once the grant is active: both NSG writes accepted AND their
    // long-running operations reported Succeeded (ARM applies rules asynchronously).
    const reply = await jit.service.execute(p('bob@contoso.com'), `approve ${id}`, { via: 'bench' });
    if (!('request' in reply) || reply.request.status !== 'active' || !open(id)) throw new Error(`not open: ${JSON.stringify(reply).slice(0, 300)}`);
    openMs.push(Date.now() - t0);
  });
  await Promise.all(approvals);
  const writesAfterOpen = arm.stats.puts;
  const initiatesAfterOpen = defender?.stats.initiates ?? 0;

  const audit = new RedisAuditLog(jit.redis, prefix);
  const closeMs: number[] = [];
  await Promise.all(
    ids.map(async (id) => {
      const req = await jit.service.get(id);
      const due = req!.expiresAt!;
      // Defender mode: closed when Defender's own rules are gone (Defender closes at endTimeUtc; the bot writes nothing).
      if (defender) {
        while (!closed(id)) await new Promise((r) => setTimeout(r, 50));
        closeMs.push(Date.now() - due);
        return;
      }
      // Closed when the last rule.removed is audited: written after the NSG operations succeeded.
      for (;;) {
        const removed = (await audit.list({ requestId: id })).filter((e) => e.action === 'rule.removed');
        if (removed.length >= 2 && closed(id)) {
          closeMs.push(Math.max(...removed.map((e) => e.time)) - due);
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }),
  );

  if (defender) console.log(`e2e JIT_NETWORK=defender: ${N} grants on ${N} VMs (one Defender JIT policy), Defender (emulated) applies an initiate in ${LATENCY} ms, approvals 1 s apart, ${cpus().length} cores, node ${process.version}`);
  else console.log(`e2e with modelled ARM latency: ${N} grants on one VM (NIC NSG + subnet NSG), ${LATENCY} ms per NSG write, approvals 1 s apart, ${cpus().length} cores, node ${process.version}`);
  const o = summary('request approved → port open', openMs, 's');
  const c = summary('expiry → port closed', closeMs, 's');
  if (defender) console.log(`initiates: ${initiatesAfterOpen} to open ${N} grants, ${defender.stats.initiates - initiatesAfterOpen} at expiry (Defender closes by itself); NSG writes by the bot: ${arm.stats.puts}`);
  else console.log(`NSG writes: ${writesAfterOpen} to open ${N} grants on 2 NSGs, ${arm.stats.puts - writesAfterOpen} to close them; 409s ${arm.stats.conflicts409}; goal: open <= 10 s (Defender for Cloud JIT: about a minute)`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(`bench/results/${defender ? 'e2e-defender' : 'e2e-arm'}.json`, JSON.stringify({ at: new Date().toISOString(), network: NETWORK, grants: N, latencyMs: LATENCY, open: o, close: c, puts: arm.stats.puts, conflicts409: arm.stats.conflicts409, ...(defender ? { initiates: defender.stats.initiates } : {}) }, null, 2));
  defender?.close();

  await jit.stop();
  await arm.close();
  await deleteKeys(prefix);
  rmSync(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
