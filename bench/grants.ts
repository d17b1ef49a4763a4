// Benchmark: approve → rule applied on the simulated gate, and expiry → rule removed, over N
// grants, on the real Redis + BullMQ stack. Not a test: prints figures, writes JSON.
//
//   npm run bench                       (1,000 grants)
//   BENCH_GRANTS=200 npm run bench      (smaller)
//
// Loopback only: Redis at REDIS_URL (default 127.0.0.1:6379), under a throw-away key prefix.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { GrantSpec, NetworkGate } from '../src/app/ports.js';
import { SimulatedGate } from '../src/adapters/simulated/gate.js';
import { startJit } from '../src/bootstrap.js';
import type { AppliedRule, Target } from '../src/core/types.js';
import { silentLogger } from '../src/log.js';
import { deleteKeys } from '../test/integration/harness.js';
import { summary } from './lib.js';
import { principalId as p } from '../src/core/ids.js';

const fmt = (v: number) => v.toFixed(1);

const N = Number(process.env.BENCH_GRANTS ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 20);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 20);
/** Spread the expiries over this many seconds (grant i lasts DURATION_S + i/N × spread). */
const SPREAD_S = Number(process.env.BENCH_EXPIRY_SPREAD_S ?? 0);
const gcNow = (globalThis as { gc?: () => void }).gc;
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const TARGETS = 10;

/** Times when each grant's rules were written and removed, measured at the gate. */
class TimedGate implements NetworkGate {
  opened = new Map<string, number>();
  closed = new Map<string, number>();
  constructor(private readonly inner: NetworkGate) {}
  async open(g: GrantSpec): Promise<AppliedRule[]> {
    const rules = await this.inner.open(g);
    this.opened.set(g.requestId, performance.now());
    return rules;
  }
  async close(id: string, t: Target): Promise<AppliedRule[]> {
    const removed = await this.inner.close(id, t);
    if (removed.length > 0) this.closed.set(id, Date.now());
    return removed;
  }
  list() {
    return this.inner.list();
  }
  async remove(rules: AppliedRule[]) {
    const removed = await this.inner.remove(rules);
    for (const r of removed) if (!this.closed.has(r.requestId)) this.closed.set(r.requestId, Date.now());
    return removed;
  }
  updateExpiry(id: string, t: Target, at: number) {
    return this.inner.updateExpiry(id, t, at);
  }
}


async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'jit-bench-'));
  const prefix = `bench-${Date.now().toString(36)}`;
  const rg = '/subscriptions/bench/resourceGroups/rg';
  const targets = Array.from({ length: TARGETS }, (_, i) => `vm${i}`);
  writeFileSync(
    join(dir, 'policy.yaml'),
    `principals:\n  req@bench.example: {}\n  ok@bench.example: {}\n` +
      `roles:\n  - { principal: req@bench.example, role: JIT Requester, scope: /subscriptions/bench }\n  - { principal: ok@bench.example, role: JIT Approver, scope: /subscriptions/bench }\n` +
      `targets:\n${targets.map((t) => `  ${t}: { id: ${rg}/providers/Microsoft.Compute/virtualMachines/${t}, os: windows }`).join('\n')}\n` +
      `policies:\n  all:\n    scope: /subscriptions/bench\n    ports: [{ port: 3389, maxDuration: 1h }]\n    approval: { required: true, quorum: 1 }\n`,
  );
  const gate = new TimedGate(await SimulatedGate.open({ file: join(dir, 'net.json') }));
  const app = await startJit({
    env: {
      PORT: '0', REDIS_URL, JIT_KEY_PREFIX: prefix, JIT_REQUEST_RATE: 'off', JIT_MAX_ACTIVE_PER_PRINCIPAL: '0', JIT_MAX_ACTIVE_PER_TARGET: '0', JIT_DATA_DIR: dir, JIT_POLICY_FILE: join(dir, 'policy.yaml'),
      JIT_MIN_DURATION: '1s', LOG_LEVEL: 'error', JIT_RECONCILE_INTERVAL: '1h',
    },
    log: silentLogger,
    gate,
  });
  const rssBefore = process.memoryUsage().rss;
  try {
    console.log(`bench: ${N} grants over ${TARGETS} NSGs, concurrency ${CONCURRENCY}, duration ${DURATION_S}s${SPREAD_S ? ` + up to ${SPREAD_S}s (expiries spread)` : ''}, ${cpus().length} cores, node ${process.version}`);
    const ids: string[] = [];
    const t0 = performance.now();
    await pool(Array.from({ length: N }, (_, i) => i), CONCURRENCY, async (i) => {
      const octet = (i % 250) + 1;
      const reply = await app.service.execute(p('req@bench.example'), `rdp vm${i % TARGETS} ${DURATION_S + Math.floor((i / N) * SPREAD_S)}s from 203.0.${Math.floor(i / 250)}.${octet}`, { via: 'bench' });
      if (reply.kind !== 'pending_approval') throw new Error(`request ${i}: ${JSON.stringify(reply)}`);
      ids.push(reply.request.id);
    });
    const requestMs = performance.now() - t0;
    console.log(`requests created: ${N} in ${fmt(requestMs)} ms (${fmt((N / requestMs) * 1000)}/s)`);

    const approveStart = new Map<string, number>();
    const expiresAt = new Map<string, number>();
    const t1 = performance.now();
    await pool(ids, CONCURRENCY, async (id) => {
      approveStart.set(id, performance.now());
      const reply = await app.service.execute(p('ok@bench.example'), `approve ${id}`, { via: 'bench' });
      if (reply.kind !== 'decided' || reply.request.status !== 'active') throw new Error(`approve ${id}: ${JSON.stringify(reply)}`);
      expiresAt.set(id, reply.request.expiresAt!);
    });
    const approveMs = performance.now() - t1;
    console.log(`approvals: ${N} in ${fmt(approveMs)} ms (${fmt((N / approveMs) * 1000)}/s)`);
    const applied = summary('approve → rule applied', ids.map((id) => gate.opened.get(id)! - approveStart.get(id)!));
    // With --expose-gc (npm run bench does it), measure live memory, not garbage not yet collected.
    gcNow?.();
    const rssActive = process.memoryUsage().rss;
    const heapActive = process.memoryUsage().heapUsed;
    const redis = new Redis(REDIS_URL);
    const perGrant = await redisBytesPerGrant(redis, prefix, ids.slice(0, 50));
    const hz = Number(((await redis.config('GET', 'hz')) as string[])[1]);
    redis.disconnect();

    const deadline = Date.now() + (DURATION_S + SPREAD_S) * 1000 + 60_000;
    while (gate.closed.size < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    if (gate.closed.size < N) throw new Error(`only ${gate.closed.size} of ${N} rules were removed`);
    const removed = summary('expiry → rule removed', ids.map((id) => gate.closed.get(id)! - expiresAt.get(id)!));
    const left = await gate.list();
    console.log(`Redis hz ${hz}; rules left open: ${left.length}; Redis bytes per grant, its request record only (every key: npm run bench:footprint): ~${perGrant}; RSS ${(rssBefore / 2 ** 20).toFixed(0)} → ${(rssActive / 2 ** 20).toFixed(0)} MiB (heap used ${(heapActive / 2 ** 20).toFixed(0)} MiB${gcNow ? ' after GC' : ', no --expose-gc'}) with ${N} active`);

    const results = {
      date: new Date().toISOString(), node: process.version, cores: cpus().length, grants: N, concurrency: CONCURRENCY,
      approveToApplied: applied, expiryToRemoved: removed, requestsPerSecond: (N / requestMs) * 1000, approvalsPerSecond: (N / approveMs) * 1000,
      redisBytesPerGrant: perGrant, redisHz: hz, rssMiB: { before: rssBefore / 2 ** 20, active: rssActive / 2 ** 20 }, heapUsedMiB: heapActive / 2 ** 20, rulesLeftOpen: left.length,
    };
    mkdirSync('bench/results', { recursive: true });
    writeFileSync('bench/results/grants.json', JSON.stringify(results, null, 2));
    console.log('wrote bench/results/grants.json');
  } finally {
    await app.stop();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** MEMORY USAGE of the request records (each holds its audit ids); bench/footprint.ts counts every key. */
async function redisBytesPerGrant(redis: Redis, prefix: string, sample: string[]): Promise<number> {
  let total = 0;
  for (const id of sample) total += Number((await redis.memory('USAGE', `${prefix}:req:${id}`)) ?? 0);
  return Math.round(total / sample.length);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
