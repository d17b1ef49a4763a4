// Benchmark: start-up and the CLI, each as its own process, as a user runs them.
//   1. `npm start` → the first 200 from /healthz (spawn to answer; and the CPU its processes had
//      used by then, on Linux), then SIGTERM, BENCH_RUNS times;
//   2. one CLI command's round trip against that server (spawn to exit): `bin/jit as alice status
//      <id>`, `bin/jit help`, and the same through `npm run jit -- …`.
// Not a test. For the figure of issue 22, run it in a fresh clone after `npm ci`:
//
//   git clone <repo> /tmp/jit-clone && (cd /tmp/jit-clone && npm ci)
//   BENCH_DIR=/tmp/jit-clone npm run bench:startup
//   BENCH_START_CMD='node dist/main.js' BENCH_RUNS=10 npm run bench:startup
//
// The server runs in BENCH_DIR (default: this checkout) with the example policy, a throw-away data
// directory and key prefix, on the Redis at REDIS_URL (default 127.0.0.1:6379). The CLI rows are
// skipped where BENCH_DIR has no bin/jit (a checkout from before it existed): BENCH_CLI names
// another CLI command there (e.g. 'npm run -s jit --').
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { deleteKeys, freePort } from '../test/integration/harness.js';
import { pct } from './lib.js';

const DIR = resolve(process.env.BENCH_DIR ?? '.');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const START = (process.env.BENCH_START_CMD ?? 'npm start').split(' ');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const get = (url: string): Promise<number> =>
  new Promise((done) => {
    const req = request(url, (res) => {
      res.resume();
      res.on('end', () => done(res.statusCode ?? 0));
    });
    req.on('error', () => done(0));
    req.end();
  });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a command in DIR; resolves with its wall time (ms), exit code and output. */
function timed(cmd: string[], env: Record<string, string>): Promise<{ ms: number; code: number | null; out: string }> {
  return new Promise((done) => {
    const t0 = performance.now();
    const child = spawn(cmd[0]!, cmd.slice(1), { cwd: DIR, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => done({ ms: performance.now() - t0, code, out }));
  });
}

/**
 * CPU seconds spent so far by every process of a process group (Linux: /proc/<pid>/stat, in
 * clock ticks of 1/100 s: user, system, and reaped children's), or NaN where there is no /proc.
 */
function groupCpuMs(pgid: number): number {
  let ticks = 0;
  let dirs: string[];
  try {
    dirs = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return NaN;
  }
  for (const pid of dirs) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // After "pid (comm) ": state ppid pgrp … utime(14) stime(15) cutime(16) cstime(17), counted from 1.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(f[2]) !== pgid) continue;
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return ticks * 10;
}

interface Server {
  ms: number;
  /** CPU the start command's processes had used when /healthz first answered. */
  cpuMs: number;
  url: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** Starts the server command (its own process group), polls /healthz every 5 ms, returns at the first 200. */
async function start(): Promise<Server> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'jit-bench-start-'));
  const prefix = `bench-start-${Math.random().toString(36).slice(2, 8)}`;
  const env = { PORT: String(port), JIT_DATA_DIR: dataDir, JIT_KEY_PREFIX: prefix, REDIS_URL, JIT_MIN_DURATION: '10s', LOG_LEVEL: 'warn' };
  const url = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  const child = spawn(START[0]!, START.slice(1), { cwd: DIR, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  for (;;) {
    if ((await get(`${url}/healthz`)) === 200) break;
    if (child.exitCode !== null) throw new Error(`${START.join(' ')} exited ${child.exitCode}:\n${err}`);
    if (performance.now() - t0 > 60_000) throw new Error(`no /healthz after 60 s:\n${err}`);
    await sleep(5);
  }
  const ms = performance.now() - t0;
  const cpuMs = groupCpuMs(child.pid!);
  return {
    ms,
    cpuMs,
    url,
    env,
    async stop() {
      process.kill(-child.pid!, 'SIGTERM');
      await exited;
      await deleteKeys(prefix);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const line = (name: string, values: number[]) =>
  console.log(`${name}: n=${values.length} min=${Math.min(...values).toFixed(0)} ms median=${pct(values, 50).toFixed(0)} ms max=${Math.max(...values).toFixed(0)} ms`);

async function main(): Promise<void> {
  console.log(`in ${DIR}, ${RUNS} runs each, Node ${process.version}`);
  const starts: number[] = [];
  const cpu: number[] = [];
  // One unmeasured start first (file-system cache, and a stale bundle's rebuild, are not the figure).
  await (await start()).stop();
  for (let i = 0; i < RUNS; i++) {
    const s = await start();
    starts.push(s.ms);
    cpu.push(s.cpuMs);
    await s.stop();
  }
  line(`${START.join(' ')} → /healthz 200, wall`, starts);
  if (!cpu.some(Number.isNaN)) line(`${START.join(' ')} → /healthz 200, CPU of its processes`, cpu);

  const s = await start();
  try {
    const env = { ...s.env, JIT_URL: s.url, JIT_API_TOKEN: '' };
    const clis: Array<[string, string[]]> = [];
    if (process.env.BENCH_CLI) clis.push([process.env.BENCH_CLI, process.env.BENCH_CLI.split(' ')]);
    else if (existsSync(join(DIR, 'bin/jit'))) clis.push(['bin/jit', ['bin/jit']], ['npm run -s jit --', ['npm', 'run', '-s', 'jit', '--']]);
    else clis.push(['npm run -s jit --', ['npm', 'run', '-s', 'jit', '--']]);
    const open = await timed([...clis[0]![1], 'as', 'alice@contoso.com', 'ssh', 'dev1', '30m', 'from', '198.51.100.20'], env);
    const id = /Request (r[0-9a-z]+)/.exec(open.out)?.[1];
    if (!id) throw new Error(`no request id in: ${open.out}`);
    for (const [name, cmd] of clis) {
      for (const [what, args] of [
        [`as alice@contoso.com status ${id}`, ['as', 'alice@contoso.com', 'status', id]],
        ['help', ['help']],
      ] as const) {
        const times: number[] = [];
        await timed([...cmd, ...args], env); // warm-up
        for (let i = 0; i < RUNS; i++) {
          const r = await timed([...cmd, ...args], env);
          if (what !== 'help' && r.code !== 0) throw new Error(`${name} ${what} exited ${r.code}: ${r.out}`);
          times.push(r.ms);
        }
        line(`${name} ${what}`, times);
      }
    }
  } finally {
    await s.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
