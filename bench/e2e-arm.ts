// Benchmark: end to end with modelled ARM latency. The real server (startJit with
// JIT_NETWORK=azure, Redis, BullMQ) against the ARM emulator where every NSG rule operation takes
// BENCH_ARM_LATENCY_MS (default 5,000 ms) to complete, as Azure's do. Figures:
//   request → port open (from the approver's click to the rules on both NSGs of the path),
//   expiry → port closed (from the stored expiry to the last rule.removed, written once ARM
//     reported the DELETE operations Succeeded; negative: closed before the expiry),
//   how early each close started (rule.removed leadMs: the expiry minus the revocation's start),
// to set beside "about a minute" that Defender for Cloud's JIT takes to apply a request.
//
// One NSG runs one operation at a time. With JIT_NSG_WRITES=auto (default here, with the role that
// has networkSecurityGroups/write) every change queued for an NSG goes in one whole-NSG write;
// with =rules (BENCH_NSG_WRITES=rules, the least-privilege role) each rule is an operation. Approvals come BENCH_E2E_GAP_MS apart
// (default 12 s, jittered ±50%; a load one VM's NSGs can carry) and grants last BENCH_E2E_DURATION_S
// plus up to as much again at random, so expiries fall between opens as they would.
//
//   npm run bench:e2e                       (10 grants, 5 s per ARM write, 30–60 s grants)
//   BENCH_E2E_GRANTS=5 BENCH_ARM_LATENCY_MS=2000 BENCH_E2E_GAP_MS=5000 npm run bench:e2e
//   BENCH_E2E_GRANTS=20 BENCH_E2E_GAP_MS=0 npm run bench:e2e   (a burst of 20 approvals at once)
//   BENCH_NSG_WRITES=rules npm run bench:e2e   (JIT_NSG_WRITES=rules, the least-privilege role;
//     default: auto with the role that has networkSecurityGroups/write)
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisAuditLog } from '../src/adapters/redis/audit.js';
import { startJit } from '../src/bootstrap.js';
import { createLogger, silentLogger } from '../src/log.js';
import { deleteKeys } from '../test/integration/harness.js';
import { summary } from './lib.js';
import { ArmEmulator } from '../test/fakes/arm.js';
import { TEST_POLICY_YAML } from '../test/fixtures/book.js';
import { principalId as p } from '../src/core/ids.js';

const N = Number(process.env.BENCH_E2E_GRANTS ?? 10);
const LATENCY = Number(process.env.BENCH_ARM_LATENCY_MS ?? 5000);
const DURATION_S = Number(process.env.BENCH_E2E_DURATION_S ?? 30);
const GAP_MS = Number(process.env.BENCH_E2E_GAP_MS ?? 12_000);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const MODE = process.env.BENCH_NSG_WRITES === 'rules' ? 'rules' : 'auto';
const ROLE = JSON.parse(readFileSync(new URL(`../manifest/azure/${MODE === 'rules' ? 'jit-bot-role.json' : 'jit-bot-role-nsg-write.json'}`, import.meta.url), 'utf8')) as { Actions: string[] };


async function main() {
  const arm = await new ArmEmulator({ latencyMs: LATENCY, roleActions: ROLE.Actions }).start();
  const vm1 = arm.standardVm('sub1', 'prod', 'vm1', '10.0.0.4');
  const dir = mkdtempSync(join(tmpdir(), 'jit-bench-e2e-'));
  writeFileSync(join(dir, 'policy.yaml'), TEST_POLICY_YAML);
  const prefix = `bench-e2e-${Date.now().toString(36)}`;
  const jit = await startJit({
    env: {
      PORT: '0', HOST: '127.0.0.1', REDIS_URL, JIT_KEY_PREFIX: prefix, JIT_REQUEST_RATE: 'off', JIT_MAX_ACTIVE_PER_PRINCIPAL: '0', JIT_MAX_ACTIVE_PER_TARGET: '0', JIT_DATA_DIR: dir, JIT_POLICY_FILE: join(dir, 'policy.yaml'), JIT_MIN_DURATION: '1s',
      JIT_NETWORK: 'azure', JIT_NSG_WRITES: MODE, AZURE_ARM_ENDPOINT: arm.url, AZURE_ARM_CA_FILE: arm.certFile, AZURE_ACCESS_TOKEN: 'bench',
      AZURE_POLL_INTERVAL_MS: process.env.AZURE_POLL_INTERVAL_MS ?? '500', AZURE_WRITE_DEADLINE: '120s',
      // Time is compressed here (30–60 s grants; in use ≥ 5 min): the reconciler's 60 s default,
      // scaled the same way, is 10 s. Its sweeps re-plan revocations whose lead grew meanwhile.
      JIT_RECONCILE_INTERVAL: process.env.BENCH_RECONCILE_INTERVAL ?? '10s',
    },
    log: process.env.BENCH_DEBUG ? createLogger('debug', (l) => process.stderr.write(`${l}\n`)) : silentLogger,
  });
  const open = (id: string) => [vm1.nicNsg, vm1.subnetNsg].every((nsg) => arm.rules(nsg).some((r) => r.name.startsWith(`jit-${id}-`)));
  const closed = (id: string) => [vm1.nicNsg, vm1.subnetNsg].every((nsg) => !arm.rules(nsg).some((r) => r.name.startsWith(`jit-${id}-`)));

  const ids: string[] = [];
  for (let i = 0; i < N; i++) {
    const seconds = DURATION_S + Math.floor(Math.random() * (DURATION_S + 1));
    const r = await jit.service.execute(p('alice@contoso.com'), `rdp vm1 ${seconds}s from 203.0.113.${i + 1}`, { via: 'bench' });
    if (!('request' in r)) throw new Error(JSON.stringify(r));
    ids.push(r.request.id);
  }
  // Approvals arrive about GAP_MS apart, as people click.
  const openMs: number[] = [];
  const notOpened: string[] = [];
  let at = 0;
  const approvals = ids.map(async (id, i) => {
    at += i === 0 ? 0 : GAP_MS * (0.5 + Math.random());
    await new Promise((r) => setTimeout(r, at));
    const t0 = Date.now();
    // The approve call returns once the grant is active: both NSG writes accepted AND their
    // long-running operations reported Succeeded (ARM applies rules asynchronously).
    const reply = await jit.service.execute(p('bob@contoso.com'), `approve ${id}`, { via: 'bench' });
    if (!('request' in reply) || reply.request.status !== 'active' || !open(id)) {
      notOpened.push(`${id}: ${JSON.stringify(reply).slice(0, 200)}`);
      return;
    }
    openMs.push(Date.now() - t0);
  });
  await Promise.all(approvals);

  const audit = new RedisAuditLog(jit.redis, prefix);
  const closeMs: number[] = [];
  const leadMs: number[] = [];
  const timeline: Array<{ id: string; activatedAt: number; expiresAt: number; leadMs: number; lateMs: number }> = [];
  await Promise.all(
    ids.map(async (id) => {
      const req = await jit.service.get(id);
      if (!req?.activatedAt) return;
      const due = req.expiresAt!;
      // Closed when the last rule.removed is audited: written after the NSG operations succeeded.
      for (;;) {
        const removed = (await audit.list({ requestId: id })).filter((e) => e.action === 'rule.removed');
        if (removed.length >= 2 && closed(id)) {
          closeMs.push(Math.max(...removed.map((e) => e.time)) - due);
          leadMs.push(Math.min(...removed.map((e) => Number(e.details.leadMs))));
          timeline.push({ id, activatedAt: req.activatedAt, expiresAt: due, leadMs: leadMs.at(-1)!, lateMs: closeMs.at(-1)! });
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }),
  );

  console.log(`JIT_NSG_WRITES=${MODE}`);
  console.log(`e2e with modelled ARM latency: ${N} grants on one VM (NIC NSG + subnet NSG), ${LATENCY} ms per NSG rule operation, approvals ~${GAP_MS / 1000} s apart, ${DURATION_S}–${2 * DURATION_S} s grants, ${cpus().length} cores, node ${process.version}`);
  const o = summary('request approved → port open', openMs, 's');
  const c = summary('expiry → port closed (negative: before the expiry)', closeMs, 's');
  const l = summary('close started before the expiry (leadMs)', leadMs, 's');
  // Each grant on the time line (s from the first activation): open, close started, expiry, closed.
  const t0 = Math.min(...timeline.map((g) => g.activatedAt));
  const sec = (ms: number) => ((ms - t0) / 1000).toFixed(1).padStart(6);
  for (const g of timeline.sort((a, b) => a.expiresAt - b.expiresAt)) console.log(`  ${g.id}  opened ${sec(g.activatedAt)}  close started ${sec(g.expiresAt - g.leadMs)}  expiry ${sec(g.expiresAt)}  closed ${sec(g.expiresAt + g.lateMs)}${g.lateMs > 0 ? '  LATE' : ''}`);
  if (notOpened.length) console.log(`not opened (${notOpened.length}): ${notOpened.join('; ')}`);
  console.log(`NSG writes: ${arm.stats.nsgPuts} whole-NSG PUT, ${arm.stats.puts - arm.stats.nsgPuts} rule PUT, ${arm.stats.deletes} rule DELETE; 409s ${arm.stats.conflicts409}; 403s ${arm.stats.forbidden403}; goal: open <= 10 s (Defender for Cloud JIT: about a minute), closed by the expiry (p99 <= 0 s)`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/e2e-arm.json', JSON.stringify({ at: new Date().toISOString(), mode: MODE, grants: N, latencyMs: LATENCY, gapMs: GAP_MS, open: o, close: c, lead: l, notOpened: notOpened.length, puts: arm.stats.puts, nsgPuts: arm.stats.nsgPuts, deletes: arm.stats.deletes, conflicts409: arm.stats.conflicts409 }, null, 2));

  await jit.stop();
  await arm.close();
  await deleteKeys(prefix);
  rmSync(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
