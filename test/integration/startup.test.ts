// The new user's path: `npm start` (src/main.ts) as a real process, the CLI against it, clean
// stop on SIGTERM, and start-up errors that name what is wrong.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_POLICY_YAML } from '../fixtures/book.js';
import { REDIS_URL, deleteKeys, waitFor } from './harness.js';

const TSX = ['--import', 'tsx'];

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
    const child = spawn(process.execPath, [...TSX, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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
    child = spawn(process.execPath, [...TSX, 'src/main.ts'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitFor('server up', async () => stderr.includes('jit-bot is running at'), 20_000);
  });

  afterAll(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the CLI requests, approves, shows the rule and the audit trail', async () => {
    const req = await run(['src/cli.ts', 'as', 'alice@contoso.com', 'rdp', 'vm1', '2s', 'from', '203.0.113.7'], env);
    expect(req.code, req.stderr).toBe(0);
    const id = /Request (r[0-9a-z]+) is waiting for approval/.exec(req.stdout)?.[1];
    expect(id, req.stdout).toBeDefined();

    const ok = await run(['src/cli.ts', 'as', 'bob@contoso.com', 'approve', id!], env);
    expect(ok.stdout).toContain(`Request ${id} approved; open until`);
    const rules = await run(['src/cli.ts', 'rules'], env);
    expect(rules.stdout).toMatch(new RegExp(`vm1-nsg\\s+\\d+\\s+Allow Inbound tcp/3389 from 203\\.0\\.113\\.7/32\\s+jit-${id}-3389`));

    const bad = await run(['src/cli.ts', 'as', 'alice@contoso.com', 'rdp', 'vm1', '99h'], env);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toContain('vm1 allows at most 3h on 3389; try npm run jit -- as alice@contoso.com rdp vm1 3h');

    // Poll over HTTP (a CLI process per poll costs a second of CPU), then ask the CLI once.
    const local = { 'x-jit-local-token': readFileSync(join(dir, 'local-token'), 'utf8').trim() };
    await waitFor('expired', async () => ((await (await fetch(`http://127.0.0.1:${port}/api/local/rules`, { headers: local })).json()) as { rules: unknown[] }).rules.length === 0, 15_000, 200);
    expect((await run(['src/cli.ts', 'rules'], env)).stdout).toContain('No JIT rules are open');
    const audit = await run(['src/cli.ts', 'audit', id!], env);
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
    [{ JIT_POLICY_FILE: '/nonexistent/policy.yaml' }, '/nonexistent/policy.yaml: 1 problem in the policy file:\n  file not found'],
  ])('%o', async (bad, expected) => {
    const r = await run(['src/main.ts'], { REDIS_URL, ...bad });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(expected);
  });

  it('a policy file with a bad key stops start-up naming the key path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jit-badpolicy-'));
    const file = join(dir, 'p.yaml');
    writeFileSync(file, 'policies:\n  prod:\n    scope: /subscriptions/s\n    ports:\n      - { port: 22 }\n      - { port: 3389, maxDuration: "99x" }\n');
    const r = await run(['src/main.ts'], { REDIS_URL, JIT_POLICY_FILE: file });
    rmSync(dir, { recursive: true, force: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('policies.prod.ports[1].maxDuration: "99x" is not a duration');
  });
});
