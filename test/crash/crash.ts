// Crash safety: the real server (src/main.ts) as a child process under load (requests,
// approvals, extensions, revocations with short durations), killed with SIGKILL at random
// moments and restarted, again and again. A sampler reads the simulated network (the file the
// gate writes) the whole time. Afterwards the invariants are checked:
//   - no rule is open later than its expiry plus one reconcile interval (plus restart time);
//   - at the end, no rule is open at all, and every rule that was open belonged to a grant;
//   - every request is in a final or consistent state;
//   - every request's audit trail has no gap (each state it reached has its event).
// Used by test/crash/crash.test.ts (CI size) and `npm run soak` (longer).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RedisAuditLog } from '../../src/adapters/redis/audit.js';
import { RedisRequestStore } from '../../src/adapters/redis/store.js';
import type { AccessRequest, AppliedRule, AuditAction } from '../../src/core/types.js';
import { TEST_POLICY_YAML } from '../fixtures/book.js';
import { deleteKeys, freePort } from '../integration/harness.js';

export interface CrashOptions {
  kills: number;
  redisUrl?: string;
  /** Reconcile interval of the server, ms (also the lateness allowance). */
  reconcileMs?: number;
  log?: (line: string) => void;
}

export interface CrashReport {
  kills: number;
  requests: number;
  activated: number;
  lateRules: Array<{ name: string; expiresAt: number; seenAt: number }>;
  leftOpen: AppliedRule[];
  inconsistent: Array<{ id: string; why: string }>;
  /** Rules seen open whose request was never approved. */
  unexplained: string[];
  auditGaps: Array<{ id: string; missing: string }>;
  maxLateMs: number;
  seconds: number;
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function crashRun(opts: CrashOptions): Promise<CrashReport> {
  const redisUrl = opts.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const reconcileMs = opts.reconcileMs ?? 1000;
  const log = opts.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'jit-crash-'));
  writeFileSync(join(dir, 'policy.yaml'), TEST_POLICY_YAML);
  const prefix = `crash-${Math.random().toString(36).slice(2, 10)}`;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const netFile = join(dir, 'simulated-network.json');
  const env = {
    ...process.env,
    PORT: String(port), HOST: '127.0.0.1', REDIS_URL: redisUrl, JIT_KEY_PREFIX: prefix, JIT_DATA_DIR: dir,
    JIT_POLICY_FILE: join(dir, 'policy.yaml'), JIT_MIN_DURATION: '1s', JIT_RECONCILE_INTERVAL: `${Math.round(reconcileMs / 1000)}s`,
    JIT_REQUEST_RATE: 'off', JIT_MAX_ACTIVE_PER_PRINCIPAL: '0', JIT_MAX_ACTIVE_PER_TARGET: '0', LOG_LEVEL: 'error',
  };
  let child: ChildProcess | null = null;
  // While the server is down or starting nobody can close a rule: those intervals are excused.
  const down: Array<[number, number]> = [];
  let downSince = Date.now();
  const start = async () => {
    const out = openSync(join(dir, 'server.log'), 'a');
    child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: { ...env, LOG_LEVEL: process.env.CRASH_LOG_LEVEL ?? 'error' }, stdio: ['ignore', out, out] });
    closeSync(out);
    for (let i = 0; i < 300; i++) {
      try {
        if ((await fetch(`${url}/healthz`)).ok) {
          down.push([downSince, Date.now()]);
          return;
        }
      } catch {
        /* not up yet */
      }
      await sleep(20);
    }
    throw new Error('the server did not come up');
  };
  const kill = async () => {
    const c = child;
    child = null;
    if (c && c.exitCode === null) {
      downSince = Date.now();
      c.kill('SIGKILL');
      await once(c, 'exit');
    }
  };

  // The sampler: every rule it sees open, with when it saw it.
  const seenOpen = new Map<string, AppliedRule>();
  const lateRules: CrashReport['lateRules'] = [];
  const allowance = reconcileMs + 1000; // one reconcile interval + the sampler's and the sweep's own time
  const downtime = (from: number, to: number) => down.reduce((t, [a, b]) => t + Math.max(0, Math.min(b, to) - Math.max(a, from)), 0) + (downSince > (down.at(-1)?.[1] ?? 0) && downSince < to ? to - Math.max(downSince, from) : 0);
  let sampling = true;
  const readRules = (): AppliedRule[] => {
    if (!existsSync(netFile)) return [];
    try {
      const f = JSON.parse(readFileSync(netFile, 'utf8')) as { nsgs: Record<string, AppliedRule[]> };
      return Object.values(f.nsgs).flat();
    } catch {
      return []; // caught mid-rename: next sample
    }
  };
  let maxLateMs = 0;
  const sampler = (async () => {
    while (sampling) {
      const now = Date.now();
      for (const r of readRules()) {
        seenOpen.set(`${r.scope}/${r.name}`, r);
        const late = now - r.expiresAt - downtime(r.expiresAt, now);
        maxLateMs = Math.max(maxLateMs, late);
        if (late > allowance && !lateRules.some((x) => x.name === r.name && x.expiresAt === r.expiresAt)) lateRules.push({ name: r.name, expiresAt: r.expiresAt, seenAt: now });
      }
      await sleep(100);
    }
  })();

  // The load: requests with short durations, approvals, extensions, revocations.
  const ids: string[] = [];
  let loading = true;
  const cmd = async (as: string, text: string): Promise<{ reply?: { request?: AccessRequest } }> => {
    try {
      const res = await fetch(`${url}/api/local/command`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ as, text }) });
      return res.ok ? ((await res.json()) as { reply?: { request?: AccessRequest } }) : {};
    } catch {
      return {}; // the server is down: this is the point
    }
  };
  const load = (async () => {
    let n = 0;
    while (loading) {
      n++;
      const r = await cmd('alice@contoso.com', `rdp vm1 ${1 + (n % 3)}s from 198.51.100.${(n % 250) + 1}`);
      const id = r.reply?.request?.id;
      if (id) {
        ids.push(id);
        void cmd('bob@contoso.com', `approve ${id}`).then(() => {
          if (n % 4 === 0) return cmd('dave@contoso.com', `extend ${id} 1s`);
          if (n % 5 === 0) return cmd('alice@contoso.com', `revoke ${id}`);
          return undefined;
        });
      }
      await sleep(15);
    }
  })();

  const t0 = Date.now();
  try {
    await start();
    for (let k = 0; k < opts.kills; k++) {
      await sleep(150 + Math.random() * 450);
      await kill();
      await start();
      if ((k + 1) % 20 === 0) log(`kills: ${k + 1}/${opts.kills}, requests so far ${ids.length}`);
    }
    loading = false;
    await load;
    // Settle: grants last at most 4 s (+ extensions), the reconciler sweeps each second, an approval
    // interrupted by a kill is healed by its activation guard 15 s later, and a job that was running
    // in a killed process is retried within ~15 s. Wait until nothing is in flight (at most 90 s).
    const settleRedis = new Redis(redisUrl);
    const settleStore = new RedisRequestStore(settleRedis, prefix);
    await sleep(5000);
    for (let i = 0; i < 90; i++) {
      const inFlight = (await Promise.all(ids.map((id) => settleStore.get(id)))).filter((r) => r && (r.status === 'approved' || (r.status === 'active' && (r.expiresAt ?? 0) < Date.now())));
      if (inFlight.length === 0 && readRules().length === 0) break;
      await sleep(1000);
    }
    settleRedis.disconnect();
  } finally {
    loading = false;
    sampling = false;
    await sampler;
  }

  const redis = new Redis(redisUrl);
  const store = new RedisRequestStore(redis, prefix);
  const audit = new RedisAuditLog(redis, prefix);
  const inconsistent: CrashReport['inconsistent'] = [];
  const auditGaps: CrashReport['auditGaps'] = [];
  let activated = 0;
  const now = Date.now();
  for (const id of ids) {
    const r = await store.get(id);
    if (!r) {
      inconsistent.push({ id, why: 'acknowledged to the client but not stored' });
      continue;
    }
    if (r.activatedAt) activated++;
    if (r.status === 'active' && (r.expiresAt ?? 0) < now - reconcileMs) inconsistent.push({ id, why: `active but expired at ${new Date(r.expiresAt ?? 0).toISOString()}` });
    if (r.status === 'approved' && !r.startAt) inconsistent.push({ id, why: 'stuck in approved' });
    const actions = new Set((await audit.list({ requestId: id })).map((e) => e.action));
    const need: AuditAction[] = ['request.created'];
    if (r.decisions.some((d) => d.decision === 'approve')) need.push('request.approval_vote');
    if (r.activatedAt) need.push('grant.activated');
    if (r.status === 'expired') need.push('grant.expired');
    if (r.status === 'revoked') need.push('grant.revoked');
    if (r.status === 'failed') need.push('grant.failed');
    for (const a of need) if (!actions.has(a)) auditGaps.push({ id, missing: a });
  }
  const unexplained: string[] = [];
  for (const rule of seenOpen.values()) {
    const r = await store.get(rule.requestId);
    if (!r || !r.decisions.some((d) => d.decision === 'approve')) unexplained.push(`${rule.name} (request ${r ? r.status : 'unknown'})`);
  }
  const leftOpen = readRules();
  if (process.env.CRASH_KEEP_SERVER) {
    log(`server kept running at ${url} (pid ${child ? (child as ChildProcess).pid : '?'})`);
    (child as ChildProcess | null)?.unref();
  } else await kill();
  redis.disconnect();
  if (process.env.CRASH_KEEP) log(`kept: prefix ${prefix}, dir ${dir}`);
  else {
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  }
  return { kills: opts.kills, requests: ids.length, activated, lateRules, leftOpen, inconsistent, unexplained, auditGaps, maxLateMs, seconds: (Date.now() - t0) / 1000 };
}
