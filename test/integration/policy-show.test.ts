// `policy <vm>`: the effective policy, with where each value is inherited from; visible to those
// who may see the VM; enable/disable stay for JIT Admins.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reply } from '../../src/core/reply.js';
import { startHarness, type Harness } from './harness.js';
import { p } from '../fixtures/ids.js';

let h: Harness;
const run = (as: string, text: string): Promise<Reply> => h.app.service.execute(p(as), text, { via: 'test' });
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const lineOf = (r: Reply, key: string) => {
  if (r.kind !== 'policy') throw new Error(`expected a policy reply, got ${JSON.stringify(r)}`);
  return r.lines.find((l) => l.key === key);
};

describe('policy <vm>', () => {
  it('shows each value with its source: the subscription policy, a VM policy overriding it, defaults', async () => {
    const db1 = await run('alice@contoso.com', 'policy db1');
    expect(lineOf(db1, 'port 22/tcp')).toEqual({ key: 'port 22/tcp', value: 'max 1h, from 203.0.113.0/24', from: 'db1' });
    expect(lineOf(db1, 'approval.approvers')).toEqual({ key: 'approval.approvers', value: 'group:oncall', from: 'sub' });
    expect(lineOf(db1, 'approval.selfApproval')).toMatchObject({ value: 'not allowed', from: 'default' });
    const q2 = await run('bob@contoso.com', 'policy show quorum2');
    expect(lineOf(q2, 'approval.quorum')).toMatchObject({ value: '2', from: 'quorum2' });
    expect(lineOf(q2, 'approval.timeout')).toMatchObject({ value: '1h', from: 'sub' });
    const dev1 = await run('alice@contoso.com', 'policy dev1');
    expect(lineOf(dev1, 'approval.required')).toMatchObject({ value: 'no (opens at once)', from: 'dev' });
    expect(lineOf(dev1, 'port 8443/tcp')).toMatchObject({ value: 'max 30m, from 198.51.100.0/24, 2001:db8::/32', from: 'dev' });
    const text = (await h.cmd('alice@contoso.com', 'policy db1')).text;
    expect(text).toMatch(/^Policy for db1 \(linux, \/subscriptions\/sub1\/resourceGroups\/prod\/providers\/Microsoft\.Compute\/virtualMachines\/db1\):/);
    expect(text).toMatch(/port 22\/tcp\s+max 1h, from 203\.0\.113\.0\/24\s+← db1/);
  });

  it('someone who may not see the VM is told it does not exist; enable stays for JIT Admins', async () => {
    expect(await run('mallory@contoso.com', 'policy vm1')).toMatchObject({ kind: 'rejected', code: 'unknown_target' });
    expect(await run('alice@contoso.com', 'policy vm99')).toMatchObject({ kind: 'rejected', code: 'unknown_target' });
    expect(await run('erin@contoso.com', 'policy vm1')).toMatchObject({ kind: 'policy' });
    expect(await run('alice@contoso.com', 'policy enable vm1')).toMatchObject({ kind: 'rejected', code: 'forbidden' });
    expect(await run('alice@contoso.com', 'policy frobnicate vm1')).toMatchObject({ kind: 'rejected', code: 'parse' });
  });
});
