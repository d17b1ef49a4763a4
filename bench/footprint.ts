// Benchmark: footprint at N active grants (issue 22), with the server as its own process.
// Not a test: prints figures, writes bench/results/footprint.json.
//
//   npm run bench:footprint                      (10,000 grants)
//   BENCH_GRANTS=1000 npm run bench:footprint    (smaller)
//   BENCH_HEAP_SNAPSHOT=1 npm run bench:footprint (also a heap snapshot of the server at N grants)
//
// Starts a private redis-server on a free loopback port (so every key counted is this run's) and
// the server with `npm start` (the production start path, simulated network), each as its own
// process; this process only sends HTTP and measures. N grants are opened through the REST API
// (POST /api/v1/requests by a requester, POST …/approve by an approver, each with a bearer token),
// then it reads the server's RSS (/proc/<pid>/status VmRSS) and sums `MEMORY USAGE` over every
// key of the Redis, by kind of key. Then it times the audit reads through the same API.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pct } from './lib.js';

const N = Number(process.env.BENCH_GRANTS ?? 10_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 20);
const HEAP_SNAPSHOT = process.env.BENCH_HEAP_SNAPSHOT === '1';
/** How long to watch the server's RSS once the grants are open (the figure is the last sample). */
const RSS_WATCH_S = Number(process.env.BENCH_RSS_WATCH_S ?? 60);
const TARGETS = 10;
const REQUESTERS = 10;
const PREFIX = 'jit';
const MiB = 2 ** 20;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function procField(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** CPU time (user + system) the process has used, ms (/proc/<pid>/stat, clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** RSS by mapping (/proc/<pid>/smaps): the glibc heap, anonymous mappings (V8's heap, malloc's mmaps), files. */
function smapsSummary(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  let name = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const path = head[1] ?? '';
      name = path === '' ? 'anonymous' : path.startsWith('[') ? path : 'files';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[name] = (out[name] ?? 0) + Number(rss[1]) / 1024;
  }
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v >= 1).map(([k, v]) => [k, Math.round(v)]));
}

/** Main-thread GC time so far by kind (major, minor, incremental, weakcb), ms, and major GCs counted: prom-client's nodejs_gc_duration_seconds. */
async function gcFigures(base: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^nodejs_gc_duration_seconds_sum\{kind="(\w+)"\} (\S+)/gm)) out[`${m[1]}Ms`] = Number(m[2]) * 1000;
  for (const m of text.matchAll(/^nodejs_gc_duration_seconds_count\{kind="(\w+)"\} (\S+)/gm)) out[`${m[1]}N`] = Number(m[2]);
  return out;
}
const gcDelta = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.keys(b).map((k) => [k, Math.round(b[k]! - (a[k] ?? 0))]));

/** The server's V8 heap from its own /metrics (prom-client's default gauges), MiB. */
async function heapFigures(base: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const get = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN) / MiB;
  const out: Record<string, number> = {
    heapUsed: get(/^nodejs_heap_size_used_bytes (\S+)/m),
    heapTotal: get(/^nodejs_heap_size_total_bytes (\S+)/m),
    external: get(/^nodejs_external_memory_bytes (\S+)/m),
  };
  for (const m of text.matchAll(/^nodejs_heap_space_size_total_bytes\{space="(\w+)"\} (\S+)/gm)) if (Number(m[2]) >= MiB) out[m[1]!] = Number(m[2]) / MiB;
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Math.round(v)]));
}

function children(pid: number): number[] {
  const out: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    if (text) out.push(...text.split(/\s+/).map(Number));
  }
  return out;
}

/** `npm start` runs npm → sh → node bin/jit-bot, which imports the bundle dist/main.js in its own process: the server is the deepest process running it. */
function serverPid(root: number): { pid: number; cmdline: string } {
  const cmd = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  let found: { pid: number; cmdline: string } | undefined;
  const walk = (pid: number) => {
    let line = '';
    try {
      line = cmd(pid);
    } catch {
      return; // exited
    }
    if (/\bnode\b/.test(line) && /src\/main\.ts|main\.m?js|bin\/jit-bot/.test(line)) found = { pid, cmdline: line };
    for (const c of children(pid)) walk(c);
  };
  walk(root);
  if (!found) throw new Error('no server process under npm start');
  return found;
}

async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => { while (next < items.length) await fn(items[next++]!); }));
}

/** The kind of a key: ids, targets and principals replaced by placeholders. */
function kindOf(key: string): string {
  return key
    .replace(/\br[0-9a-hjkmnp-tv-z]{9}\b/g, '<id>')
    .replace(/^(jit:(?:idx|ids):(?:requester|target|status):).*/, '$1*')
    .replace(/^(jit:audit:(?:target|bytarget):).*/, '$1*')
    .replace(/^(jit:ratelimit:|jit:rl:).*/, '$1*');
}

interface KindRow { kind: string; keys: number; bytes: number; types: string[]; encodings: string[] }

async function redisBreakdown(redis: Redis): Promise<KindRow[]> {
  const rows = new Map<string, { keys: number; bytes: number; types: Set<string>; encodings: Set<string> }>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    const pipe = redis.pipeline();
    for (const k of keys) {
      pipe.call('MEMORY', 'USAGE', k, 'SAMPLES', '0');
      pipe.type(k);
      pipe.object('ENCODING', k);
    }
    const res = (await pipe.exec()) ?? [];
    keys.forEach((k, i) => {
      const bytes = Number(res[3 * i]?.[1] ?? 0);
      const type = String(res[3 * i + 1]?.[1] ?? '?');
      const enc = String(res[3 * i + 2]?.[1] ?? '?');
      const kind = kindOf(k);
      const row = rows.get(kind) ?? { keys: 0, bytes: 0, types: new Set<string>(), encodings: new Set<string>() };
      row.keys++;
      row.bytes += bytes;
      row.types.add(type);
      row.encodings.add(enc);
      rows.set(kind, row);
    });
  } while (cursor !== '0');
  return [...rows].map(([kind, r]) => ({ kind, keys: r.keys, bytes: r.bytes, types: [...r.types], encodings: [...r.encodings] })).sort((a, b) => b.bytes - a.bytes);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'jit-bench-footprint-'));
  const rg = '/subscriptions/bench/resourceGroups/rg';
  const targets = Array.from({ length: TARGETS }, (_, i) => `vm${i}`);
  const requesters = Array.from({ length: REQUESTERS }, (_, i) => `req${i}@bench.example`);
  const people = [...requesters, 'ok@bench.example', 'admin@bench.example', 'reader@bench.example'];
  writeFileSync(
    join(dir, 'policy.yaml'),
    `principals:\n${people.map((p) => `  ${p}: {}`).join('\n')}\n` +
      `roles:\n${requesters.map((p) => `  - { principal: ${p}, role: JIT Requester, scope: /subscriptions/bench }`).join('\n')}\n` +
      `  - { principal: ok@bench.example, role: JIT Approver, scope: /subscriptions/bench }\n` +
      `  - { principal: admin@bench.example, role: JIT Admin, scope: /subscriptions/bench }\n` +
      `  - { principal: reader@bench.example, role: JIT Reader, scope: /subscriptions/bench }\n` +
      `targets:\n${targets.map((t) => `  ${t}: { id: ${rg}/providers/Microsoft.Compute/virtualMachines/${t}, os: windows, address: ${t}.bench.example }`).join('\n')}\n` +
      `policies:\n  all:\n    scope: /subscriptions/bench\n    ports: [{ port: 3389, maxDuration: 3h }]\n    approval: { required: true, quorum: 1, timeout: PT1H }\n`,
  );
  const tokens = new Map(people.map((p) => [p, randomBytes(24).toString('hex')]));
  const apiTokens = [...tokens].map(([p, t]) => `${p}=sha256:${createHash('sha256').update(t).digest('hex')}`).join(',');

  const redisPort = Number(process.env.BENCH_REDIS_PORT ?? (await freePort()));
  const redisDir = join(dir, 'redis');
  mkdirSync(redisDir);
  // The embedded Redis's settings (src/adapters/redis/embedded.ts), on TCP.
  const redisProc: ChildProcess = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', redisDir, '--appendonly', 'no', '--save', '', '--hz', '100', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
  const REDIS_URL = `redis://127.0.0.1:${redisPort}`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
  redis.on('error', () => {}); // refused until redis-server listens; the ping loop below waits
  for (let i = 0; ; i++) {
    try {
      if ((await redis.ping()) === 'PONG') break;
    } catch {
      if (i > 50) throw new Error('redis-server did not start');
    }
    await sleep(100);
  }
  const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const serverEnv: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port), HOST: '127.0.0.1', REDIS_URL, JIT_KEY_PREFIX: PREFIX, JIT_DATA_DIR: join(dir, 'data'), JIT_POLICY_FILE: join(dir, 'policy.yaml'),
    JIT_NETWORK: 'simulated', JIT_API_TOKENS: apiTokens, JIT_LOCAL_CHANNEL: 'true',
    JIT_REQUEST_RATE: 'off', JIT_READ_RATE: 'off', JIT_AUDIT_RATE: 'off', JIT_MAX_ACTIVE_PER_PRINCIPAL: '0', JIT_MAX_ACTIVE_PER_TARGET: '0',
    LOG_LEVEL: 'warn', JIT_RECONCILE_INTERVAL: '1h',
    // BENCH_NODE_OPTIONS: V8 / Node flags for the server only (experiments: --trace-gc, --max-semi-space-size=…).
    NODE_OPTIONS: [process.env.NODE_OPTIONS, process.env.BENCH_NODE_OPTIONS, HEAP_SNAPSHOT ? `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${join(process.cwd(), 'bench/results')}` : ''].filter(Boolean).join(' '),
  };
  mkdirSync('bench/results', { recursive: true });
  // Its own process group, so stopping it stops npm, tsx and the server (and nothing else).
  const server = spawn('npm', ['start'], { env: serverEnv, detached: true, stdio: ['ignore', process.env.BENCH_SERVER_LOG ? 'pipe' : 'ignore', 'pipe'] });
  if (process.env.BENCH_SERVER_LOG) server.stdout?.pipe(createWriteStream(`${process.env.BENCH_SERVER_LOG}.out`));
  let serverErr = '';
  server.stderr?.on('data', (b: Buffer) => (serverErr = (serverErr + b.toString()).slice(-4000)));
  // BENCH_SERVER_LOG=<file>: the server's stdout and stderr (e.g. with --trace-gc).
  if (process.env.BENCH_SERVER_LOG) {
    const out = createWriteStream(process.env.BENCH_SERVER_LOG);
    server.stderr?.pipe(out);
  }
  const stopAll = async () => {
    if (server.exitCode === null && server.pid) {
      try { process.kill(-server.pid, 'SIGTERM'); } catch { /* gone */ }
      for (let i = 0; i < 100 && server.exitCode === null; i++) await sleep(100);
      if (server.exitCode === null) try { process.kill(-server.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    redis.disconnect();
    redisProc.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const tStart = performance.now();
    for (;;) {
      if (server.exitCode !== null) throw new Error(`npm start exited ${server.exitCode}: ${serverErr}`);
      const ok = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (performance.now() - tStart > 60_000) throw new Error(`server not ready after 60 s: ${serverErr}`);
      await sleep(100);
    }
    const { pid, cmdline } = serverPid(server.pid!);
    console.log(`footprint: ${N} grants over ${TARGETS} NSGs via the REST API, concurrency ${CONCURRENCY}, ${cpus().length} cores, node ${process.version}, Redis ${redisVersion} (private, port ${redisPort})`);
    console.log(`server pid ${pid}: ${cmdline}`);
    await sleep(5000);
    const rssIdle = procField(pid, 'VmRSS');
    const smapsIdle = smapsSummary(pid);
    const heapIdle = await heapFigures(base);
    const usedIdle = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
    const keysIdle = await redis.dbsize();

    const call = async (who: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
      const res = await fetch(base + path, {
        method,
        headers: { authorization: `Bearer ${tokens.get(who)!}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };

    const ids: string[] = [];
    const cpu0 = cpuMs(pid);
    const gc0 = await gcFigures(base);
    const t0 = performance.now();
    // While the grants open: the server's RSS and V8 heap every 5 s (where a burst's memory goes).
    const during: Array<{ s: number; grants: number; rss: number; heap: Record<string, number> }> = [];
    let opening = true;
    const sampler = (async () => {
      while (opening) {
        await sleep(5000);
        if (!opening) break;
        const heap = await heapFigures(base).catch(() => ({}));
        during.push({ s: Math.round((performance.now() - t0) / 1000), grants: ids.length, rss: Math.round(procField(pid, 'VmRSS') / MiB), heap });
      }
    })();
    await pool(Array.from({ length: N }, (_, i) => i), CONCURRENCY, async (i) => {
      const created = await call(requesters[i % REQUESTERS]!, 'POST', '/api/v1/requests', {
        kind: 'rdp', target: `vm${i % TARGETS}`, duration: '2h', source: `10.${Math.floor(i / 62_500) % 250}.${Math.floor(i / 250) % 250}.${(i % 250) + 1}`,
      });
      const req = (created.json.request ?? {}) as { id?: string; status?: string };
      if (created.status !== 201 || !req.id) throw new Error(`request ${i}: HTTP ${created.status} ${JSON.stringify(created.json)}`);
      const approved = await call('ok@bench.example', 'POST', `/api/v1/requests/${req.id}/approve`);
      const after = (approved.json.request ?? {}) as { status?: string };
      if (approved.status !== 200 || after.status !== 'active') throw new Error(`approve ${req.id}: HTTP ${approved.status} ${JSON.stringify(approved.json)}`);
      ids.push(req.id);
    });
    const openMs = performance.now() - t0;
    const openCpuMs = cpuMs(pid) - cpu0;
    const openGc = gcDelta(gc0, await gcFigures(base));
    opening = false;
    await sampler;
    console.log(`server CPU (user + system) while opening: ${(openCpuMs / 1000).toFixed(1)} s, ${(openCpuMs / N).toFixed(2)} ms per grant; main-thread GC by kind (ms, count) ${JSON.stringify(openGc)}`);
    console.log('while opening (s, grants, RSS MiB, V8 heap MiB):');
    for (const d of during) console.log(`  ${String(d.s).padStart(4)} s ${String(d.grants).padStart(6)} grants  RSS ${String(d.rss).padStart(4)}  ${JSON.stringify(d.heap)}`);
    const grantsPerSecond = (N / openMs) * 1000;
    console.log(`opened ${N} grants (request + approve, 2 REST calls each) in ${(openMs / 1000).toFixed(1)} s: ${grantsPerSecond.toFixed(0)} grants/s`);
    const rssPeak = procField(pid, 'VmHWM');

    // The activation guard jobs (15 s after each approval) run and are removed: wait for them, so
    // what is left is what an active grant keeps.
    const settleStart = Date.now();
    for (;;) {
      const n = await redis.zcard(`${PREFIX}-bull:jit-workflow:delayed`);
      const starts = (await redis.zrange(`${PREFIX}-bull:jit-workflow:delayed`, 0, -1)).filter((j) => j.startsWith('start-')).length;
      const waiting = await redis.llen(`${PREFIX}-bull:jit-workflow:wait`);
      const active = await redis.llen(`${PREFIX}-bull:jit-workflow:active`);
      if (starts === 0 && waiting === 0 && active === 0) break;
      if (Date.now() - settleStart > 120_000) throw new Error(`guard jobs still pending after 2 min (delayed ${n})`);
      await sleep(1000);
    }
    // V8 gives memory back some time after a burst (its memory reducer runs once allocation slows
    // down): watch the RSS for RSS_WATCH_S and report it right after the grants and at the end.
    const rssSamples: number[] = [];
    const settled = Date.now();
    while (Date.now() - settled < RSS_WATCH_S * 1000) {
      rssSamples.push(procField(pid, 'VmRSS'));
      await sleep(2000);
    }
    rssSamples.push(procField(pid, 'VmRSS'));
    const rssActive = rssSamples[rssSamples.length - 1]!;
    const rssAfter = rssSamples[0]!;
    const heapAfter = during.length ? during[during.length - 1]!.heap : {};
    const smapsActive = smapsSummary(pid);
    const heapActive = await heapFigures(base);
    console.log(`server RSS: idle ${(rssIdle / MiB).toFixed(0)} MiB; at ${N} active grants ${(rssActive / MiB).toFixed(0)} MiB ${RSS_WATCH_S} s after the last one settled (${(rssAfter / MiB).toFixed(0)} MiB right after; peak while opening ${(rssPeak / MiB).toFixed(0)} MiB; every 2 s: ${rssSamples.map((s) => (s / MiB).toFixed(0)).join(' ')})`);
    console.log(`  RSS by mapping, MiB: idle ${JSON.stringify(smapsIdle)}; at ${N} grants ${JSON.stringify(smapsActive)}`);
    console.log(`  V8 heap (GET /metrics), MiB: idle ${JSON.stringify(heapIdle)}; at ${N} grants ${JSON.stringify(heapActive)}`);
    if (HEAP_SNAPSHOT) {
      process.kill(pid, 'SIGUSR2');
      await sleep(15_000);
      console.log('heap snapshot requested (SIGUSR2): see bench/results/*.heapsnapshot');
    }

    const rows = await redisBreakdown(redis);
    const mem = await redis.info('memory');
    const usedActive = Number(/used_memory:(\d+)/.exec(mem)?.[1]);
    const keysActive = await redis.dbsize();
    const total = rows.reduce((s, r) => s + r.bytes, 0);
    console.log(`Redis: ${keysActive} keys (${keysIdle} before the grants), MEMORY USAGE summed ${total} B = ${(total / N).toFixed(0)} B per grant; used_memory ${((usedActive - usedIdle) / N).toFixed(0)} B per grant above idle`);
    console.log(`  ${'kind'.padEnd(44)} ${'keys'.padStart(7)} ${'bytes'.padStart(11)} ${'B/grant'.padStart(8)}  type/encoding`);
    for (const r of rows) {
      console.log(`  ${r.kind.padEnd(44)} ${String(r.keys).padStart(7)} ${String(r.bytes).padStart(11)} ${(r.bytes / N).toFixed(0).padStart(8)}  ${r.types.join(',')}/${r.encodings.join(',')}`);
    }

    // Audit reads through the API, best of 5 each (rate limits are off: one call's cost).
    const best = async (fn: () => Promise<number>, runs = 5): Promise<{ ms: number; rows: number }> => {
      let ms = Infinity;
      let n = 0;
      for (let k = 0; k < runs; k++) {
        const s = performance.now();
        n = await fn();
        ms = Math.min(ms, performance.now() - s);
      }
      return { ms, rows: n };
    };
    const auditAs = (who: string, query = '') => best(async () => {
      const r = await call(who, 'GET', `/api/v1/audit?since=1d${query}`);
      if (r.status !== 200) throw new Error(`audit as ${who}: HTTP ${r.status}`);
      return (r.json.rows as unknown[]).length;
    });
    const localToken = readFileSync(join(dir, 'data', 'local-token'), 'utf8').trim();
    const sampleIds = [ids[0]!, ids[Math.floor(N / 2)]!, ids[N - 1]!];
    const perRequest: number[] = [];
    let perRequestEvents = 0;
    for (const id of sampleIds) {
      const r = await best(async () => {
        const res = await fetch(`${base}/api/local/audit?request=${id}`, { headers: { 'x-jit-local-token': localToken } });
        const body = (await res.json()) as { events: Array<{ action: string }> };
        if (!res.ok) throw new Error(`local audit ${id}: HTTP ${res.status}`);
        return body.events.length;
      });
      perRequest.push(r.ms);
      perRequestEvents = r.rows;
    }
    const audit = {
      admin: await auditAs('admin@bench.example'),
      reader: await auditAs('reader@bench.example'),
      requester: await auditAs('req0@bench.example'),
      adminOneTarget: await auditAs('admin@bench.example', '&target=vm3'),
      oneRequestMs: Math.max(...perRequest),
      oneRequestEvents: perRequestEvents,
    };
    console.log(`audit read (best of 5): admin ${audit.admin.ms.toFixed(0)} ms (${audit.admin.rows} rows); reader ${audit.reader.ms.toFixed(0)} ms (${audit.reader.rows}); requester req0 ${audit.requester.ms.toFixed(0)} ms (${audit.requester.rows}); admin, target vm3 ${audit.adminOneTarget.ms.toFixed(0)} ms (${audit.adminOneTarget.rows}); one request's events ${audit.oneRequestMs.toFixed(1)} ms (${audit.oneRequestEvents} events)`);

    // Status of one grant (the request hash read), p50 over 200 calls.
    const statusMs: number[] = [];
    for (let k = 0; k < 200; k++) {
      const s = performance.now();
      const r = await call('admin@bench.example', 'GET', `/api/v1/requests/${ids[k % ids.length]!}`);
      if (r.status !== 200) throw new Error(`status: HTTP ${r.status}`);
      statusMs.push(performance.now() - s);
    }
    console.log(`GET /api/v1/requests/<id>: p50 ${pct(statusMs, 50).toFixed(1)} ms, p99 ${pct(statusMs, 99).toFixed(1)} ms`);

    const results = {
      date: new Date().toISOString(), node: process.version, cores: cpus().length, redisVersion, grants: N, concurrency: CONCURRENCY,
      serverCmdline: cmdline, grantsPerSecond, serverCpuMsPerGrant: openCpuMs / N, gcWhileOpening: openGc, heapGrowingPercent: serverEnv.JIT_HEAP_GROWING_PERCENT ?? 'default (50)',
      rssMiB: { idle: rssIdle / MiB, active: rssActive / MiB, rightAfter: rssAfter / MiB, watchSeconds: RSS_WATCH_S, samples: rssSamples.map((s) => s / MiB), peakWhileOpening: rssPeak / MiB, byMappingIdle: smapsIdle, byMappingActive: smapsActive, heapIdle, heapActive, heapLastWhileOpening: heapAfter, whileOpening: during },
      redis: { keys: keysActive, keysIdle, memoryUsageBytes: total, bytesPerGrant: total / N, usedMemoryDeltaPerGrant: (usedActive - usedIdle) / N, byKind: rows },
      audit, statusP50Ms: pct(statusMs, 50),
    };
    writeFileSync('bench/results/footprint.json', JSON.stringify(results, null, 2));
    console.log('wrote bench/results/footprint.json');
  } finally {
    await stopAll();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
