// The new user's path: `npm start` (bin/jit-bot, which runs the bundle of src/main.ts) as a real
// process, the CLI (bin/jit) against it, clean stop on SIGTERM, and start-up errors that name what
// is wrong. Both launchers rebuild their bundle first when this checkout's src/ changed.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_POLICY_YAML } from '../fixtures/book.js';
import { REDIS_URL, deleteKeys, waitFor } from './harness.js';

/** `npm start`'s command, and the CLI as the README runs it. */
const START = 'bin/jit-bot';
const CLI = 'bin/jit';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm start and the CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jit-start-'));
  const prefix = `test-start-${Math.random().toString(36).slice(2, 8)}`;
  let child: ChildProcess;
  let port: number;
  let stderr = '';
  let env: Record<string, string>;

  beforeAll(async () => {
    writeFileSync(join(dir, 'policy.yaml'), TEST_POLICY_YAML);
    port = await freePort();
    env = {
      PORT: String(port), REDIS_URL, JIT_KEY_PREFIX: prefix, JIT_DATA_DIR: dir, JIT_POLICY_FILE: join(dir, 'policy.yaml'),
      JIT_MIN_DURATION: '1s', JIT_URL: `http://127.0.0.1:${port}`,
    };
    child = spawn(process.execPath, [START], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitFor('server up', async () => stderr.includes('jit-bot is running at'), 20_000);
  });

  afterAll(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the CLI requests, approves, shows the rule and the audit trail', async () => {
    // 5 s: long enough that the grant is still open when the next two commands have run.
    const req = await run([CLI, 'as', 'alice@contoso.com', 'rdp', 'vm1', '5s', 'from', '203.0.113.7'], env);
    expect(req.code, req.stderr).toBe(0);
    const id = /Request (r[0-9a-z]+) is waiting for approval/.exec(req.stdout)?.[1];
    expect(id, req.stdout).toBeDefined();

    const ok = await run([CLI, 'as', 'bob@contoso.com', 'approve', id!], env);
    expect(ok.stdout).toContain(`Request ${id} approved; open until`);
    const rules = await run([CLI, 'rules'], env);
    expect(rules.stdout).toMatch(new RegExp(`vm1-nsg\\s+\\d+\\s+Allow Inbound tcp/3389 from 203\\.0\\.113\\.7/32\\s+jit-${id}-3389`));

    const bad = await run([CLI, 'as', 'alice@contoso.com', 'rdp', 'vm1', '99h'], env);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toContain('vm1 allows at most 3h on 3389; try bin/jit as alice@contoso.com rdp vm1 3h');

    // Poll over HTTP, then ask the CLI once.
    const local = { 'x-jit-local-token': readFileSync(join(dir, 'local-token'), 'utf8').trim() };
    await waitFor('expired', async () => ((await (await fetch(`http://127.0.0.1:${port}/api/local/rules`, { headers: local })).json()) as { rules: unknown[] }).rules.length === 0, 15_000, 200);
    expect((await run([CLI, 'rules'], env)).stdout).toContain('No JIT rules are open');
    const audit = await run([CLI, 'audit', id!], env);
    expect(audit.stdout.split('\n').filter(Boolean).map((l) => l.split(/\s+/)[2])).toEqual([
      'request.created', 'request.approval_vote', 'request.approved', 'grant.activated', 'rule.applied', 'grant.expired', 'rule.removed',
    ]);
  });

  it('healthz answers and SIGTERM drains and exits 0', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(await res.json()).toMatchObject({ status: 'ok', worker: 'running' });
    expect(await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()).toMatchObject({ status: 'ready', redis: 'up', worker: 'running' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toContain('SIGTERM, draining');
  });
});

describe('start-up errors name the problem', () => {
  it.each([
    [{ JIT_NETWORK: 'aws' }, 'JIT_NETWORK: must be "simulated", "azure" (the bot writes NSG / firewall rules) or "defender"'],
    [{ JIT_NETWORK: 'defender' }, 'AZURE_SUBSCRIPTION_ID: missing; JIT_NETWORK=defender lists'],
    [{ PORT: 'eighty' }, 'PORT:'],
    [{ JIT_HEAP_GROWING_PERCENT: '1.5' }, 'JIT_HEAP_GROWING_PERCENT: must be a whole number of percent, e.g. 50 (got "1.5")'],
    [{ JIT_HEAP_GROWING_PERCENT: '1000' }, 'JIT_HEAP_GROWING_PERCENT:'],
    [{ JIT_POLICY_FILE: '/nonexistent/policy.yaml' }, '/nonexistent/policy.yaml: 1 problem in the policy file:\n  file not found'],
  ])('%o', async (bad, expected) => {
    const r = await run([START], { REDIS_URL, ...bad });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(expected);
  });

  it('a policy file with a bad key stops start-up naming the key path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jit-badpolicy-'));
    const file = join(dir, 'p.yaml');
    writeFileSync(file, 'policies:\n  prod:\n    scope: /subscriptions/s\n    ports:\n      - { port: 22 }\n      - { port: 3389, maxDuration: "99x" }\n');
    const r = await run([START], { REDIS_URL, JIT_POLICY_FILE: file });
    rmSync(dir, { recursive: true, force: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('policies.prod.ports[1].maxDuration: "99x" is not a duration');
  });
});
