// Benchmark: ack latency of a signed Slack `/jit` request at a fixed rate, for jit-bot (the real
// server: Bolt on /slack/events, Redis, BullMQ, simulated gate, Web API answered by a local fake
// Slack) beside a bare Bolt app that only acks, in the same run, requests interleaved.
// Also: time until the user sees the answer (the POST to response_url). Not a test.
//
//   npm run bench:slack                         (100 req/s to each, 30 s)
//   BENCH_RATE=50 BENCH_SECONDS=10 npm run bench:slack
//
// Loopback only. Redis at REDIS_URL (default 127.0.0.1:6379), under a throw-away key prefix.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { sendSigned, slashBody } from '../test/fakes/slack.js';
import { deleteKeys } from '../test/integration/harness.js';
import { summary } from './lib.js';
import { TEST_POLICY_YAML } from '../test/fixtures/book.js';

const RATE = Number(process.env.BENCH_RATE ?? 100);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const SECRET = 'bench-signing-secret-0123456789';


/** CPU time (user + system) a process has used so far, in ms (from /proc; 0 where there is none). */
function cpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 a second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Starts a server as its own process (as in production) and waits until it answers. */
async function spawnServer(name: string, script: string, env: Record<string, string>, ready: string): Promise<{ url: string; proc: ChildProcess; output: string }> {
  const port = await freePort();
  // BENCH_PROF=1: CPU profile of each server, in bench/results/prof (open in Chrome DevTools).
  const prof = process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=bench/results/prof/${name.replace(/\W+/g, '-')}`] : [];
  const proc = spawn(process.execPath, [...prof, '--import', 'tsx', script], { env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'error' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 30_000;
  for (;;) {
    if (out.includes(ready)) break;
    if (proc.exitCode !== null || Date.now() > until) throw new Error(`${name} did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, proc, output: out };
}

async function main() {
  // The fake Slack runs in its own process: this one only sends requests and measures.
  const fake = await spawnServer('fake Slack', 'bench/fake-slack-server.ts', {}, 'listening');
  const fakeUrl = await new Promise<string>((resolve) => {
    let out = '';
    const check = () => {
      const m = /listening (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    };
    fake.proc.stdout!.on('data', (d: Buffer) => ((out += d.toString()), check()));
    fake.output.includes('listening') ? ((out = fake.output), check()) : undefined;
  });
  const slack = { apiUrl: `${fakeUrl}/api/`, responseUrl: (id: string) => `${fakeUrl}/respond/${id}` };
  const dir = mkdtempSync(join(tmpdir(), 'jit-bench-slack-'));
  const policy = join(dir, 'policy.yaml');
  writeFileSync(
    policy,
    TEST_POLICY_YAML.replace(
      'approval: { required: true, approvers: [group:oncall], quorum: 1, timeout: PT1H }',
      'approval: { required: true, approvers: [group:oncall], quorum: 1, timeout: PT1H }\n    channels: { slack: { approvals: C0APPROVALS, audit: C0AUDIT } }',
    ),
  );
  const prefix = `bench-slack-${Date.now().toString(36)}`;
  const jit = await spawnServer('jit-bot', 'src/main.ts', {
    REDIS_URL, JIT_KEY_PREFIX: prefix, JIT_REQUEST_RATE: 'off', JIT_MAX_ACTIVE_PER_PRINCIPAL: '0', JIT_MAX_ACTIVE_PER_TARGET: '0', JIT_DATA_DIR: dir, JIT_POLICY_FILE: policy,
    SLACK_SIGNING_SECRET: SECRET, SLACK_BOT_TOKEN: 'xoxb-bench', SLACK_API_URL: slack.apiUrl,
  }, 'jit-bot is running');
  const bare = await spawnServer('bare Bolt', 'bench/bare-bolt.ts', { SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: slack.apiUrl }, 'listening');
  // Warm-up (JIT compilation, connection pools): not measured.
  for (let i = 0; i < 200; i++) {
    await Promise.all([
      sendSigned(jit.url, slashBody('U024ALICE', 'help', slack.responseUrl(`warm-${i}`)), { secret: SECRET }),
      sendSigned(bare.url, slashBody('U024ALICE', 'help', slack.responseUrl(`warm-${i}`)), { secret: SECRET }),
    ]);
  }

  const ackJit: number[] = [];
  const ackBare: number[] = [];
  const sentAt = new Map<string, number>();
  const errors = { jit: 0, bare: 0 };
  const total = RATE * SECONDS;
  const interval = 1000 / RATE;
  const cpu0 = { jit: cpuMs(jit.proc.pid), bare: cpuMs(bare.proc.pid) };
  const t0 = performance.now();
  const inflight: Array<Promise<void>> = [];
  const shoot = (which: 'jit' | 'bare', i: number) => {
    const id = `${which}-${i}`;
    // Each jit request is a real access request (creates a request and posts an approval card).
    const text = process.env.BENCH_SLACK_TEXT ?? `rdp vm1 2h from 203.0.113.${(i % 250) + 1}`;
    const body = slashBody('U024ALICE', text, slack.responseUrl(id));
    sentAt.set(id, Date.now());
    return sendSigned(which === 'jit' ? jit.url : bare.url, body, { secret: SECRET })
      .then((r) => {
        if (r.status !== 200) errors[which]++;
        else (which === 'jit' ? ackJit : ackBare).push(r.ms);
      })
      .catch(() => void errors[which]++);
  };
  for (let i = 0; i < total; i++) {
    const due = t0 + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    // Alternate which one goes first so neither always gets the quieter slot.
    const order: Array<'jit' | 'bare'> = i % 2 ? ['jit', 'bare'] : ['bare', 'jit'];
    for (const w of order) inflight.push(shoot(w, i));
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - t0) / 1000;
  // Wait for the answers the user sees (response_url posts).
  type Stats = { responses: Array<{ path: string; at: number }>; cards: number };
  const stats = async () => (await (await fetch(`${fakeUrl}/stats`)).json()) as Stats;
  const until = Date.now() + 30_000;
  let seen = await stats();
  while (seen.responses.filter((r) => r.path.startsWith('/respond/jit-')).length < ackJit.length && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 200));
    seen = await stats();
  }
  // Less noisy than a tail latency on a shared 2-core machine: what each request cost the server.
  const cpuPerRequest = { jit: (cpuMs(jit.proc.pid) - cpu0.jit) / total, bare: (cpuMs(bare.proc.pid) - cpu0.bare) / total };
  const answer = seen.responses.filter((r) => r.path.startsWith('/respond/jit-')).map((r) => r.at - sentAt.get(r.path.slice('/respond/'.length))!);
  const rss = Number(readFileSync(`/proc/${jit.proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)?.[1] ?? 0) * 1024;

  console.log(`slack ack bench: ${RATE} req/s to each for ${SECONDS} s (${elapsed.toFixed(1)} s actual), ${cpus().length} cores, node ${process.version}`);
  const j = summary('jit-bot /jit ack', ackJit);
  const b = summary('bare Bolt ack', ackBare);
  const a = summary('jit-bot answer at response_url', answer);
  const ratio = { p50: j.p50 / b.p50, p99: j.p99 / b.p99 };
  console.log(`ratio jit/bare: p50 ${ratio.p50.toFixed(2)}x p99 ${ratio.p99.toFixed(2)}x (goal <= 1.3x, jit p99 < 30 ms); errors jit=${errors.jit} bare=${errors.bare}`);
  console.log(`server CPU per request: jit-bot ${cpuPerRequest.jit.toFixed(2)} ms, bare Bolt ${cpuPerRequest.bare.toFixed(2)} ms`);
  console.log(`jit-bot RSS after the run ${(rss / 2 ** 20).toFixed(0)} MiB; approval cards posted: ${seen.cards}`);

  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/slack-ack.json',
    JSON.stringify({ at: new Date().toISOString(), rate: RATE, seconds: SECONDS, cores: cpus().length, node: process.version, jit: j, bare: b, answer: a, ratio, errors, cpuPerRequestMs: cpuPerRequest }, null, 2),
  );

  bare.proc.kill('SIGTERM');
  jit.proc.kill('SIGTERM');
  fake.proc.kill('SIGTERM');
  await Promise.all([once(bare.proc, 'exit'), once(jit.proc, 'exit'), once(fake.proc, 'exit')]);
  await deleteKeys(prefix);
  rmSync(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
