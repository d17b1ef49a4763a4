// The first run as a new user does it: `npm start` from a checkout with nothing configured, on a
// machine where no Redis answers (a network namespace of its own: only its loopback, nothing on
// 6379) and `redis-server` is on the PATH; and a REDIS_URL that nothing answers on.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { startRedisServer } from '../../src/adapters/redis/embedded.js';
import { freePort, startHarness, waitFor, type Harness } from './harness.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// tsx by absolute path: the child's working directory is a temp dir without node_modules.
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const dirs: string[] = [];
const tempDir = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs: number }) {
  return new Promise<{ code: number | null; stdout: string; stderr: string; ms: number }>((done) => {
    const t0 = Date.now();
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

describe('npm start with nothing configured and no Redis running', () => {
  it('starts a private redis-server under a relative JIT_DATA_DIR, serves, and stops it on SIGTERM', async () => {
    const cwd = tempDir('jit-firstrun-');
    // In a network namespace of its own (`unshare -rn` also works unprivileged): nothing answers
    // on 127.0.0.1:6379 there, so the server must start its own Redis. The script starts the
    // server as `npm start` does, waits for /healthz, makes one request with the CLI, then SIGTERMs.
    const script = `
      ip link set lo up || exit 90
      "$NODE" --import "$TSX" "$ROOT/src/main.ts" 2>server.log &
      server=$!
      i=0
      until "$NODE" -e "fetch('http://127.0.0.1:3000/healthz').then(r => r.text()).then(t => console.log('HEALTHZ ' + t), () => process.exit(1))"; do
        i=$((i+1)); [ $i -gt 120 ] && break; kill -0 $server 2>/dev/null || break; sleep 0.25
      done
      "$NODE" --import "$TSX" "$ROOT/src/cli.ts" as alice@contoso.com ssh dev1 30m from 198.51.100.20
      ls data/redis
      kill -TERM $server; wait $server; echo "SERVER_EXIT $?"
      cat server.log >&2
    `;
    const r = await run('unshare', ['-rn', 'sh', '-c', script], {
      cwd,
      env: {
        NODE: process.execPath, TSX, ROOT,
        JIT_DATA_DIR: 'data', // the default, relative to where `npm start` runs
        JIT_POLICY_FILE: join(ROOT, 'config/policy.example.yaml'),
        REDIS_URL: '', PORT: '3000', HOST: '127.0.0.1',
      },
      timeoutMs: 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('starting a private');
    expect(r.stdout).toMatch(/HEALTHZ \{"status":"ok"/);
    expect(r.stdout).toMatch(/Request r[0-9a-z]+ is open: dev1 22\/tcp from 198\.51\.100\.20\/32/);
    expect(r.stdout).toContain('SERVER_EXIT 0');
    expect(r.stderr).not.toContain('Failed opening Unix socket');
    // Its AOF lives under ./data/redis of the directory it was started in; the socket is gone.
    const files = readdirSync(join(cwd, 'data/redis'), { recursive: true }).map(String);
    expect(files.some((f) => /appendonly/.test(f))).toBe(true);
    expect(existsSync(join(cwd, 'data/redis/redis.sock'))).toBe(false);
  }, 70_000);
});

describe('an explicit REDIS_URL that nothing answers on', () => {
  it('at start: one line naming REDIS_URL, the address and the cause, then exit 1 (no hang, no ioredis noise)', async () => {
    const port = await freePort();
    const r = await run(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { REDIS_URL: `redis://127.0.0.1:${port}`, PORT: '0', JIT_DATA_DIR: tempDir('jit-noredis-') },
      timeoutMs: 30_000,
    });
    expect(r.code, r.stderr).toBe(1);
    const lines = r.stderr.split('\n').filter((l) => l.includes('REDIS_URL'));
    expect(lines).toEqual([`jit-bot: cannot start: REDIS_URL: cannot reach Redis at 127.0.0.1:${port} (connect ECONNREFUSED 127.0.0.1:${port})`]);
    expect(r.stderr).not.toContain('Unhandled error event');
  }, 40_000);

  describe('at run time', () => {
    let h: Harness | undefined;
    let stopRedis: (() => Promise<void>) | undefined;
    afterAll(async () => {
      await h?.app.stop().catch(() => {});
      await stopRedis?.();
    });

    it('/readyz says redis: down while it is gone (and answers at once), ready again when it is back', async () => {
      const port = await freePort();
      const dir = tempDir('jit-runtime-redis-');
      const start = async () => (stopRedis = (await startRedisServer({ bin: 'redis-server', dir, listen: { port }, persist: false })).stop);
      await start();
      h = await startHarness({ REDIS_URL: `redis://127.0.0.1:${port}` });
      const ready = async () => {
        const res = await fetch(`${h!.app.url}/readyz`, { signal: AbortSignal.timeout(5_000) });
        return { status: res.status, body: (await res.json()) as { redis: string } };
      };
      expect(await ready()).toMatchObject({ status: 200, body: { redis: 'up' } });
      await stopRedis!();
      await waitFor('readyz says redis down', async () => {
        const r = await ready();
        return r.status === 503 && r.body.redis === 'down';
      });
      await start();
      await waitFor('readyz ready again', async () => (await ready()).status === 200, 15_000);
    }, 40_000);
  });
});

describe('npm test with no Redis running', () => {
  it('the global setup starts a private redis-server for the run, the tests use it, and it is stopped after', async () => {
    // The README's test command on a machine where nothing answers on 6379 (a network namespace
    // of its own), on one file that needs Redis.
    const script = String.raw`
      ip link set lo up || exit 90
      out=$(mktemp)
      "$NODE" "$ROOT/node_modules/vitest/vitest.mjs" run --reporter=dot test/integration/redis-store.test.ts >"$out" 2>&1
      echo "VITEST_EXIT $?"
      cat "$out"
      port=$(sed -n 's/.*redis:\/\/127\.0\.0\.1:\([0-9]*\) for this run.*/\1/p' "$out")
      rm -f "$out"
      [ -n "$port" ] && "$NODE" -e "require('net').connect($port, '127.0.0.1').on('connect', () => console.log('REDIS_LEFT_RUNNING')).on('error', () => {})"
      true
    `;
    const r = await run('unshare', ['-rn', 'sh', '-c', script], {
      env: { NODE: process.execPath, ROOT, REDIS_URL: '' },
      timeoutMs: 90_000,
    });
    const out = r.stdout + r.stderr;
    expect(out, out).toContain('VITEST_EXIT 0');
    expect(out).toMatch(/nothing answered on redis:\/\/127\.0\.0\.1:6379: started a private redis-server at redis:\/\/127\.0\.0\.1:\d+/);
    expect(out).not.toContain('REDIS_LEFT_RUNNING');
  }, 100_000);
});
