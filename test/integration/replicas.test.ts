// Several replicas on one Redis (real processes, the Azure adapter against the ARM emulator, which
// both write to): both serve requests, each revocation runs once, the reconciler runs on one
// replica at a time, and SIGTERM in the middle of a grant's network write loses nothing. Also the
// container's start-up path (the Dockerfile's command with compose's and .env.example's settings).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Redis } from 'ioredis';
import { RedisAuditLog } from '../../src/adapters/redis/audit.js';
import { RedisRequestStore } from '../../src/adapters/redis/store.js';
import type { AccessRequest } from '../../src/core/types.js';
import { ArmEmulator } from '../fakes/arm.js';
import { TEST_POLICY_YAML } from '../fixtures/book.js';
import { REDIS_URL, deleteKeys, freePort, sleep, waitFor } from './harness.js';

interface Replica {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
  localToken: string;
}

async function startReplica(env: Record<string, string>): Promise<Replica> {
  const port = await freePort();
  // Each replica its own data dir: each writes the local channel's secret of its run there.
  const dataDir = mkdtempSync(join(tmpdir(), 'jit-replica-data-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: { ...process.env, ...env, PORT: String(port), JIT_DATA_DIR: dataDir }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  void exited.then(() => rmSync(dataDir, { recursive: true, force: true }));
  try {
    await waitFor('replica ready', async () => (await fetch(`${url}/readyz`).then((r) => r.ok, () => false)) || null, 30_000);
    return { url, child, stderr: () => err, exited, localToken: readFileSync(join(dataDir, 'local-token'), 'utf8').trim() };
  } catch (e) {
    // A replica that did not come up is not left running after the suite.
    child.kill('SIGKILL');
    throw e;
  }
}

async function cmd(r: Replica, as: string, text: string): Promise<{ reply: { kind: string; request?: AccessRequest }; text: string }> {
  const res = await fetch(`${r.url}/api/v1/commands`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-jit-act-as': as, 'x-jit-local-token': r.localToken }, body: JSON.stringify({ text }) });
  return (await res.json()) as { reply: { kind: string; request?: AccessRequest }; text: string };
}

async function metric(r: Replica, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${r.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

describe('two replicas on one Redis', () => {
  let arm: ArmEmulator;
  let a: Replica;
  let b: Replica;
  let vm1: ReturnType<ArmEmulator['standardVm']>;
  const dir = mkdtempSync(join(tmpdir(), 'jit-replicas-'));
  const prefix = `test-repl-${Math.random().toString(36).slice(2, 8)}`;
  const redis = new Redis(REDIS_URL);
  const store = new RedisRequestStore(redis, prefix);
  const audit = new RedisAuditLog(redis, prefix);
  const ours = (id: string) => [vm1.nicNsg, vm1.subnetNsg].flatMap((n) => arm.rules(n)).filter((r) => r.name.startsWith(`jit-${id}-`));

  beforeAll(async () => {
    arm = await new ArmEmulator({ latencyMs: 20 }).start();
    vm1 = arm.testBookVms();
    writeFileSync(join(dir, 'policy.yaml'), TEST_POLICY_YAML);
    const env = {
      HOST: '127.0.0.1', REDIS_URL, JIT_KEY_PREFIX: prefix, JIT_DATA_DIR: dir, JIT_POLICY_FILE: join(dir, 'policy.yaml'), JIT_MIN_DURATION: '1s',
      JIT_RECONCILE_INTERVAL: '1s', JIT_REQUEST_RATE: 'off', JIT_MAX_ACTIVE_PER_PRINCIPAL: '0', JIT_MAX_ACTIVE_PER_TARGET: '0', LOG_LEVEL: 'warn',
      JIT_NETWORK: 'azure', AZURE_ARM_ENDPOINT: arm.url, AZURE_ARM_CA_FILE: arm.certFile, AZURE_ACCESS_TOKEN: 'replicas', AZURE_POLL_INTERVAL_MS: '5',
    };
    [a, b] = await Promise.all([startReplica(env), startReplica(env)]);
  }, 60_000);

  afterAll(async () => {
    for (const r of [a, b]) if (r && r.child.exitCode === null) r.child.kill('SIGKILL');
    await arm?.close();
    await deleteKeys(prefix);
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  it('both serve requests; every revocation runs exactly once; the reconciler sweeps on one replica at a time', async () => {
    const sweepsBefore = (await metric(a, 'jit_reconcile_sweeps_total', '{result="ok"}')) + (await metric(b, 'jit_reconcile_sweeps_total', '{result="ok"}'));
    const t0 = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const [asker, approver] = i % 2 ? [a, b] : [b, a];
      // 6 s grants: early close may start a revocation up to half the grant before its expiry, so
      // each is checked as soon as it is approved.
      const id = (await cmd(asker, 'alice@contoso.com', `rdp vm1 6s from 198.51.100.${i + 1}`)).reply.request!.id;
      await cmd(approver, 'bob@contoso.com', `approve ${id}`);
      expect((await store.get(id))!.status).toBe('active');
      ids.push(id);
    }
    await waitFor('all expired', async () => ((await Promise.all(ids.map((id) => store.get(id)))).every((r) => r!.status === 'expired') ? true : null), 20_000);
    await waitFor('rules gone', async () => ids.every((id) => ours(id).length === 0) || null, 10_000);
    // ARM shows a rule gone a moment before the closer records it: wait for the records.
    const closes = async (id: string) => (await audit.list({ requestId: id })).filter((e) => e.action === 'rule.removed' || e.action === 'rule.reconciled').length;
    await waitFor('closes recorded', async () => ((await Promise.all(ids.map(closes))).every((n) => n >= 2) ? true : null), 10_000);
    await sleep(500);
    for (const id of ids) {
      const actions = (await audit.list({ requestId: id })).map((e) => e.action);
      expect(actions.filter((x) => x === 'grant.expired'), id).toHaveLength(1);
      expect(actions.filter((x) => x === 'grant.activated'), id).toHaveLength(1);
      // Each of its two rules (NIC and subnet NSG) closed exactly once: by the revocation job, or,
      // when that job ran late on a loaded machine, by the reconciler, never both.
      expect(actions.filter((x) => x === 'rule.removed' || x === 'rule.reconciled'), `${id}: ${actions.join(' ')}`).toHaveLength(2);
    }
    // One sweep per interval in total, not one per replica (two replicas without the lease: ~2 per second).
    await sleep(4000);
    const seconds = (Date.now() - t0) / 1000;
    const sweeps = (await metric(a, 'jit_reconcile_sweeps_total', '{result="ok"}')) + (await metric(b, 'jit_reconcile_sweeps_total', '{result="ok"}')) - sweepsBefore;
    expect(sweeps).toBeGreaterThanOrEqual(Math.floor(seconds * 0.5));
    expect(sweeps).toBeLessThanOrEqual(Math.ceil(seconds) + 2);
  }, 60_000);

  it('SIGTERM while a grant\'s network write is in flight: the write finishes, the grant opens, the replica exits 0, and the other closes it on time', async () => {
    const id = (await cmd(a, 'alice@contoso.com', 'rdp vm1 8s from 198.51.100.77')).reply.request!.id;
    arm.failNext({ slowMs: 1500 }, { slowMs: 1500 });
    const approving = cmd(a, 'bob@contoso.com', `approve ${id}`);
    await sleep(300);
    a.child.kill('SIGTERM');
    const reply = await approving;
    expect(reply.reply.kind).toBe('decided');
    expect(await a.exited).toBe(0);
    expect(a.stderr()).toContain('SIGTERM, draining');
    const req = (await store.get(id))!;
    expect(req.status).toBe('active');
    expect(ours(id)).toHaveLength(2);
    // The surviving replica's worker revokes it.
    await waitFor('expired by b', async () => ((await store.get(id))!.status === 'expired' ? true : null), 20_000);
    await waitFor('closed', async () => ours(id).length === 0 || null, 5_000);
    expect((await fetch(`${b.url}/readyz`)).status).toBe(200);
  }, 40_000);
});

describe('the container start-up path (without Docker)', () => {
  it('the Dockerfile command with compose\'s and .env.example\'s settings: ready, JSON logs, the local channel off, SIGTERM exits 0', async () => {
    const root = new URL('../../', import.meta.url);
    const compose = parse(readFileSync(new URL('docker-compose.yml', root), 'utf8')) as { services: Record<string, { environment: Record<string, string> }> };
    const dotenv = Object.fromEntries(
      readFileSync(new URL('.env.example', root), 'utf8').split('\n').filter((l) => /^[A-Z]/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');
    const cmdLine = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    const dir = mkdtempSync(join(tmpdir(), 'jit-container-'));
    const prefix = `test-ctr-${Math.random().toString(36).slice(2, 8)}`;
    // The image's paths (/app, /data) map to this checkout and a temp dir; Redis to the local one.
    const env: Record<string, string> = { ...dotenv, ...compose.services['jit-bot']!.environment, NODE_ENV: 'production', JIT_DATA_DIR: dir, REDIS_URL, JIT_KEY_PREFIX: prefix };
    env.JIT_POLICY_FILE = env.JIT_POLICY_FILE!.replace(/^\/app\//, '');
    const port = await freePort();
    env.PORT = String(port);
    // The image's build stage: `npm ci` runs `prepare`, which bundles src/ into dist/ (here: only
    // if this checkout's dist/ is stale, as after an edit).
    execFileSync(process.execPath, ['scripts/bundle.js'], { encoding: 'utf8' });
    const child = spawn(cmdLine[0] === 'node' ? process.execPath : cmdLine[0]!, cmdLine.slice(1), { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const url = `http://127.0.0.1:${port}`;
      await waitFor('ready', async () => (await fetch(`${url}/readyz`).then((r) => r.ok, () => false)) || null, 30_000);
      expect(env.HOST).toBe('0.0.0.0');
      expect((await fetch(`${url}/api/local/rules`)).status).toBe(404);
      expect((await fetch(`${url}/api/v1/commands`, { method: 'POST', headers: { 'x-jit-act-as': 'alice@contoso.com' }, body: '{"text":"list"}' })).status).toBe(401);
      expect((await fetch(`${url}/`)).status).toBe(404);
      expect((await fetch(`${url}/metrics`)).status).toBe(200);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      const logLines = err.split('\n').filter((l) => l.startsWith('{'));
      expect(logLines.length).toBeGreaterThan(0);
      for (const l of logLines) expect(() => JSON.parse(l)).not.toThrow();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await deleteKeys(prefix);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
