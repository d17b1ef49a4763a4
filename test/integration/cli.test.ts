// The CLI as people type it: short names for principals, typos, an admin's empty `list`, and a
// scheduled request's start time (src/cli.ts against a real server on the local channel).
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ JIT_MIN_DURATION: '5m' });
});
afterAll(async () => h?.close());

function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
      env: { ...process.env, JIT_URL: h.app.url, JIT_DATA_DIR: h.dir, JIT_API_TOKEN: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run jit -- as <who>', () => {
  it('a name (alice, @bob) or a unique prefix (caro) stands for the principal', async () => {
    const asked = await cli('as', 'alice', 'rdp', 'vm1', '30m', 'from', '203.0.113.7');
    expect(asked.code, asked.stderr).toBe(0);
    const id = /Request (r[0-9a-z]+) is waiting for approval/.exec(asked.stdout)?.[1];
    expect(id, asked.stdout).toBeDefined();
    expect((await h.get(id!))!.requester).toBe('alice@contoso.com');
    const approved = await cli('as', '@bob', 'approve', id!);
    expect(approved.stdout).toContain(`Request ${id} approved`);
    const seen = await cli('as', 'caro', 'status', id!);
    expect(seen.code, seen.stderr).toBe(0);
    expect(seen.stdout).toContain(`${id}  active`);
  });

  it('a typo says "unknown principal" and lists the principals (not "no JIT Requester role")', async () => {
    const r = await cli('as', 'alcie@contoso.com', 'rdp', 'vm1', '30m', 'from', '203.0.113.7');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown principal "alcie@contoso.com"; the policy file\'s principals are: alice@contoso.com, bob@contoso.com');
    expect(r.stdout + r.stderr).not.toContain('JIT Requester');
  });

  it('list for an admin with nothing of their own points at list all', async () => {
    const r = await cli('as', 'dave', 'list');
    expect(r.stdout).toContain('No requests of yours to show. Try list all');
  });

  it('a scheduled request shows the requester when it starts', async () => {
    const r = await cli('as', 'alice', 'rdp', 'vm1', '30m', 'from', '203.0.113.7', 'at', '2099-01-01T00:00Z');
    // More than 7 days ahead is refused; a time tomorrow is not.
    expect(r.stdout).toContain('more than 7 days ahead');
    const soon = new Date(Date.now() + 26 * 3600_000).toISOString().slice(0, 16) + 'Z';
    const ok = await cli('as', 'alice', 'rdp', 'vm1', '30m', 'from', '203.0.113.7', 'at', soon);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`is waiting for approval \\(vm1 3389/tcp from 203\\.0\\.113\\.7/32 for 30m, starting ${soon.slice(0, 16)}:00Z\\)`));
    const id = /Request (r[0-9a-z]+)/.exec(ok.stdout)![1]!;
    expect((await cli('as', 'alice', 'list')).stdout).toMatch(new RegExp(`${id}  pending .*  starts ${soon.slice(0, 16)}:00Z`));
    const approved = await cli('as', 'bob', 'approve', id);
    expect(approved.stdout).toContain(`opens at ${soon.slice(0, 16)}:00Z`);
  });
});
