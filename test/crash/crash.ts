// Crash safety: the real server (src/main.ts, bundled once with esbuild so a restart takes ~0.5 s)
// as a child process under load (requests, approvals, extensions, revocations with short
// durations), killed with SIGKILL at random moments and restarted, again and again. A sampler
// reads the network the whole time: the simulated gate's file, or — with `network: 'arm'` — the
// NSGs of the ARM emulator the server writes to over HTTPS, which meanwhile injects faults
// (409, 429 with Retry-After, 503, hung connections, lost answers, slow writes).
// Afterwards the invariants are checked:
//   - no rule is open later than its grant's expiry plus one reconcile interval (plus restart
//     time); the expiry is the grant's as stored, not the one the rule's description carries,
//     which an extension rewrites only after it committed (a write queued on the NSG like any other);
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
import { build } from 'esbuild';
import { parseRuleDescription } from '../../src/core/rule-tags.js';
import { RedisAuditLog } from '../../src/adapters/redis/audit.js';
import { RedisRequestStore } from '../../src/adapters/redis/store.js';
import type { AccessRequest, AuditAction } from '../../src/core/types.js';
import { ArmEmulator, type Fault } from '../fakes/arm.js';
import { TEST_POLICY_YAML } from '../fixtures/book.js';
import { deleteKeys, freePort } from '../integration/harness.js';

export interface CrashOptions {
  kills: number;
  redisUrl?: string;
  /** Reconcile interval of the server, ms (also the lateness allowance). */
  reconcileMs?: number;
  log?: (line: string) => void;
  /** Pause between new requests, ms (default 15). */
  requestIntervalMs?: number;
  /** How long the server lives between kills, ms (default 150–600). */
  uptimeMs?: [number, number];
  /** The simulated gate (default) or the real Azure adapter against the ARM emulator, with faults. */
  network?: 'simulated' | 'arm';
  /**
   * Count each uptime from the server's readiness (/readyz: its first sweep done) instead of its
   * first answer on /healthz, so every server gets `uptimeMs` of service however long its start-up
   * takes on a loaded machine. The start-up still counts as up for the lateness (a rule waiting
   * for the first sweep after a crash is late by that time).
   */
  uptimeFromReady?: boolean;
}

type LateWay = 'job' | 'reconciler' | 'other';
/** How many rules, and their lateness (ms; negative: gone before the expiry) at p50 / p99 / max. */
export interface Spread {
  rules: number;
  p50: number;
  p99: number;
  max: number;
}

/** A rule seen open on the network. */
export interface OpenRule {
  scope: string;
  name: string;
  requestId: string;
  expiresAt: number;
}

export interface CrashReport {
  kills: number;
  requests: number;
  activated: number;
  lateRules: Array<{ name: string; expiresAt: number; seenAt: number }>;
  leftOpen: OpenRule[];
  /** ARM mode: faults the emulator injected. */
  faults: number;
  inconsistent: Array<{ id: string; why: string }>;
  /** Rules seen open whose request was never approved. */
  unexplained: string[];
  auditGaps: Array<{ id: string; missing: string }>;
  maxLateMs: number;
  /** From /healthz answering to /readyz (the first sweep done), per start: p50 and max, ms (uptimeFromReady). */
  startupSweepMs: { p50: number; max: number };
  /**
   * Per rule seen open: the last time the sampler saw it, minus its grant's expiry, minus the
   * server's downtime in between (ms; negative: gone before the expiry), as p50 / p99 / max: all
   * rules, and by what closed them (`job`: the revocation job; `reconciler`; `other`: a revocation,
   * a failed activation rolled back, a removal whose audit was lost with its process).
   */
  lateness: Spread & Record<LateWay, Spread>;
  /** The lateness allowed past expiry (outside downtime), ms. */
  allowanceMs: number;
  seconds: number;
}


const ARM_REQUEST_TIMEOUT_MS = 2000;
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
  const network = opts.network ?? 'simulated';
  // Bundled once (code splitting keeps the lazy adapters lazy); three levels deep, like the
  // sources, so paths the code resolves from its own URL (cards/) still point at the repository.
  const bundleDir = join(process.cwd(), '.cache', 'crash', prefix);
  await build({ entryPoints: ['src/main.ts'], bundle: true, splitting: true, platform: 'node', format: 'esm', packages: 'external', outdir: bundleDir, logLevel: 'warning' });
  let arm: ArmEmulator | undefined;
  let nsgs: string[] = [];
  let armEnv: Record<string, string> = {};
  if (network === 'arm') {
    arm = await new ArmEmulator({ latencyMs: 20 }).start();
    const vm1 = arm.testBookVms();
    nsgs = [vm1.nicNsg, vm1.subnetNsg];
    armEnv = {
      JIT_NETWORK: 'azure', AZURE_ARM_ENDPOINT: arm.url, AZURE_ARM_CA_FILE: arm.certFile, AZURE_ACCESS_TOKEN: 'crash-run',
      AZURE_POLL_INTERVAL_MS: '5', AZURE_WRITE_DEADLINE: '20s', AZURE_REQUEST_TIMEOUT: `${ARM_REQUEST_TIMEOUT_MS / 1000}s`,
    };
  }
  const env = {
    ...armEnv,
    ...process.env,
    PORT: String(port), HOST: '127.0.0.1', REDIS_URL: redisUrl, JIT_KEY_PREFIX: prefix, JIT_DATA_DIR: dir,
    JIT_POLICY_FILE: join(dir, 'policy.yaml'), JIT_MIN_DURATION: '1s', JIT_RECONCILE_INTERVAL: `${Math.round(reconcileMs / 1000)}s`,
    JIT_REQUEST_RATE: 'off', JIT_MAX_ACTIVE_PER_PRINCIPAL: '0', JIT_MAX_ACTIVE_PER_TARGET: '0', LOG_LEVEL: 'error',
  };
  let child: ChildProcess | null = null;
  // While the server is down or starting nobody can close a rule: those intervals are excused.
  const down: Array<[number, number]> = [];
  let downSince = Date.now();
  const startupSweeps: number[] = [];
  const start = async () => {
    const out = openSync(join(dir, 'server.log'), 'a');
    child = spawn(process.execPath, [join(bundleDir, 'main.js')], { env: { ...env, LOG_LEVEL: process.env.CRASH_LOG_LEVEL ?? 'error' }, stdio: ['ignore', out, out] });
    closeSync(out);
    const answers = async (path: string) => {
      try {
        return (await fetch(`${url}${path}`)).ok;
      } catch {
        return false; // not up yet
      }
    };
    for (let i = 0; i < 300 && !(await answers('/healthz')); i++) await sleep(20);
    const up = Date.now();
    if (!(await answers('/healthz'))) throw new Error('the server did not come up');
    down.push([downSince, up]);
    if (!opts.uptimeFromReady) return;
    for (let i = 0; i < 3000 && !(await answers('/readyz')); i++) await sleep(20);
    startupSweeps.push(Date.now() - up);
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

  // The sampler: every rule it sees open, with when it saw it last and its grant's expiry then.
  const seenOpen = new Map<string, OpenRule>();
  const lastSeen = new Map<string, { at: number; expiresAt: number }>();
  const sampleRedis = new Redis(redisUrl);
  const sampleStore = new RedisRequestStore(sampleRedis, prefix);
  const lateRules: CrashReport['lateRules'] = [];
  // One reconcile interval + the sampler's and the sweep's own time. Against ARM with faults, also
  // one fault's recovery — a close stuck on a hung connection costs a request timeout, and its
  // retry another call — and the write lock a killed replica leaves behind (1.5 s).
  const allowance = reconcileMs + 1000 + (network === 'arm' ? 2 * ARM_REQUEST_TIMEOUT_MS + 1500 : 0);
  const downtime = (from: number, to: number) => down.reduce((t, [a, b]) => t + Math.max(0, Math.min(b, to) - Math.max(a, from)), 0) + (downSince > (down.at(-1)?.[1] ?? 0) && downSince < to ? to - Math.max(downSince, from) : 0);
  let sampling = true;
  const readRules = (): OpenRule[] => {
    if (arm) {
      const a = arm;
      return nsgs.flatMap((scope) =>
        a.rules(scope).flatMap((r) => {
          const d = parseRuleDescription(r.properties.description);
          return d && r.properties.access === 'Allow' ? [{ scope, name: r.name, requestId: d.requestId, expiresAt: d.expiresAt }] : [];
        }),
      );
    }
    if (!existsSync(netFile)) return [];
    try {
      const f = JSON.parse(readFileSync(netFile, 'utf8')) as { nsgs: Record<string, OpenRule[]> };
      return Object.values(f.nsgs).flat();
    } catch {
      return []; // caught mid-rename: next sample
    }
  };
  let maxLateMs = 0;
  const sampler = (async () => {
    while (sampling) {
      const now = Date.now();
      const open = readRules();
      // A rule past the expiry its description carries may belong to a grant extended since: its
      // expiry is the stored one (read right after the sample).
      const stored = new Map<string, number>();
      for (const r of open) {
        if (now > r.expiresAt && !stored.has(r.requestId)) stored.set(r.requestId, (await sampleStore.get(r.requestId).catch(() => null))?.expiresAt ?? 0);
      }
      for (const r of open) {
        const key = `${r.scope}/${r.name}`;
        const expiresAt = Math.max(r.expiresAt, stored.get(r.requestId) ?? 0);
        seenOpen.set(key, r);
        lastSeen.set(key, { at: now, expiresAt });
        const late = now - expiresAt - downtime(expiresAt, now);
        maxLateMs = Math.max(maxLateMs, late);
        if (late > allowance && !lateRules.some((x) => x.name === r.name && x.expiresAt === expiresAt)) lateRules.push({ name: r.name, expiresAt, seenAt: now });
      }
      await sleep(100);
    }
  })();

  // The load: requests with short durations, approvals, extensions, revocations.
  const ids: string[] = [];
  let loading = true;
  const cmd = async (as: string, text: string): Promise<{ reply?: { request?: AccessRequest } }> => {
    try {
      // The local channel's secret changes at every start of the server: read it each time.
      const token = readFileSync(join(dir, 'local-token'), 'utf8').trim();
      const res = await fetch(`${url}/api/v1/commands`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-jit-act-as': as, 'x-jit-local-token': token }, body: JSON.stringify({ text }) });
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
      await sleep(opts.requestIntervalMs ?? 15);
    }
  })();

  // ARM mode: a fault now and then, of every kind the adapter must survive.
  const FAULTS: Fault[] = [
    { status: 409, code: 'AnotherOperationInProgress' },
    { status: 429, code: 'RetryableError', headers: { 'retry-after': '1' } },
    { status: 503, code: 'ServiceUnavailable' },
    { status: 500, code: 'InternalServerError' },
    { hang: 'before' },
    { hang: 'after' },
    { slowMs: 800 },
  ];
  const faulting = (async () => {
    while (arm && loading) {
      await sleep(1000 + Math.random() * 3000);
      arm.failNext(FAULTS[Math.floor(Math.random() * FAULTS.length)]!);
    }
  })();

  const t0 = Date.now();
  try {
    await start();
    for (let k = 0; k < opts.kills; k++) {
      const [lo, hi] = opts.uptimeMs ?? [150, 600];
      await sleep(lo + Math.random() * (hi - lo));
      await kill();
      await start();
      if ((k + 1) % 20 === 0) log(`kills: ${k + 1}/${opts.kills}, requests so far ${ids.length}`);
    }
    loading = false;
    await load;
    await faulting;
    arm?.clearFaults();
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
  } catch (err) {
    // A server that never came up (or any other failure) is not left running behind the test.
    await kill();
    await arm?.close();
    rmSync(bundleDir, { recursive: true, force: true });
    throw err;
  } finally {
    loading = false;
    sampling = false;
    await sampler;
    sampleRedis.disconnect();
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
  // A late rule's story, for whoever reads a failure: each audit event against its expiry, and the server's downtime.
  for (const late of lateRules) {
    const requestId = /^jit-([a-z0-9]+)-/.exec(late.name)?.[1] ?? '';
    const events = await audit.list({ requestId });
    const story = events.map((e) => `${((e.time - late.expiresAt) / 1000).toFixed(2)}s ${e.action}${e.details.leadMs !== undefined ? ` leadMs=${String(e.details.leadMs)}` : ''}${e.details.lateMs !== undefined ? ` lateMs=${String(e.details.lateMs)}` : ''}`);
    const downs = down.filter(([a, b]) => b > late.expiresAt - 10_000 && a < late.seenAt).map(([a, b]) => `${((a - late.expiresAt) / 1000).toFixed(2)}..${((b - late.expiresAt) / 1000).toFixed(2)}s`);
    log(`late: ${late.name} seen ${((late.seenAt - late.expiresAt) / 1000).toFixed(2)}s after its expiry; server down ${downs.join(', ') || 'never'} around it; ${story.join(' | ')}`);
  }
  const unexplained: string[] = [];
  for (const rule of seenOpen.values()) {
    const r = await store.get(rule.requestId);
    if (!r || !r.decisions.some((d) => d.decision === 'approve')) unexplained.push(`${rule.name} (request ${r ? r.status : 'unknown'})`);
  }
  // Each rule's lateness, by what closed it: its revocation job (rule.removed with the expiry's
  // timing), the reconciler (rule.reconciled: after a crash, or a job that has not run yet), or
  // something else (a revocation, an activation rolled back, an audit lost with its process).
  const byWay: Record<LateWay, number[]> = { job: [], reconciler: [], other: [] };
  const trails = new Map<string, Awaited<ReturnType<typeof audit.list>>>();
  for (const [key, seen] of lastSeen) {
    const rule = seenOpen.get(key)!;
    if (!trails.has(rule.requestId)) trails.set(rule.requestId, await audit.list({ requestId: rule.requestId }));
    const closed = trails.get(rule.requestId)!.find((e) => (e.action === 'rule.removed' || e.action === 'rule.reconciled') && e.details.rule === rule.name && String(e.details.scope).toLowerCase() === rule.scope.toLowerCase());
    const way: LateWay = closed?.action === 'rule.reconciled' ? 'reconciler' : closed?.details.leadMs !== undefined ? 'job' : 'other';
    byWay[way].push(seen.at - seen.expiresAt - (seen.at > seen.expiresAt ? downtime(seen.expiresAt, seen.at) : 0));
  }
  const leftOpen = readRules();
  const faults = arm?.stats.faults ?? 0;
  await arm?.close();
  rmSync(bundleDir, { recursive: true, force: true });
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
  const spread = (values: number[]): Spread => {
    const v = [...values].sort((a, b) => a - b);
    const q = (p: number) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(p * v.length) - 1))] ?? 0;
    return { rules: v.length, p50: q(0.5), p99: q(0.99), max: v.at(-1) ?? 0 };
  };
  const lateness = { ...spread([...byWay.job, ...byWay.reconciler, ...byWay.other]), job: spread(byWay.job), reconciler: spread(byWay.reconciler), other: spread(byWay.other) };
  const sweeps = [...startupSweeps].sort((a, b) => a - b);
  const startupSweepMs = { p50: sweeps[Math.floor(sweeps.length / 2)] ?? 0, max: sweeps.at(-1) ?? 0 };
  return { kills: opts.kills, requests: ids.length, activated, lateRules, leftOpen, faults, inconsistent, unexplained, auditGaps, maxLateMs, lateness, startupSweepMs, allowanceMs: allowance, seconds: (Date.now() - t0) / 1000 };
}
