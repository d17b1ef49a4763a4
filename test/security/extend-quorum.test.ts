// Issue 17, item 13: "quorum for extensions". quorum2's policy needs two approvers; one approver
// extending someone else's grant alone used to push its expiry out at once. Now an approver's
// extension of another's grant goes through the same approval rules as the requester's own: it is
// one vote, and the grant grows only when the quorum is reached (by other approvers).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestOf, startHarness, type Harness } from '../integration/harness.js';
import { API_TOKENS, api } from './lib.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ JIT_API_TOKENS: API_TOKENS });
});
afterAll(async () => {
  await h?.close();
});

/** alice's grant on quorum2 (quorum 2), approved by bob and carol. */
async function grant(from: string): Promise<string> {
  const id = requestOf((await h.cmd('alice@contoso.com', `ssh quorum2 30m from ${from}`)).reply).id;
  await h.cmd('bob@contoso.com', `approve ${id}`);
  await h.cmd('carol@contoso.com', `approve ${id}`);
  expect((await h.app.service.get(id))!.status).toBe('active');
  return id;
}

describe('an approver extending another\'s grant under quorum 2', () => {
  it('alone it does not extend: the grant, the rule and the revocation keep their expiry; one vote is recorded', async () => {
    const id = await grant('203.0.113.7');
    const before = (await h.app.service.get(id))!;
    const ruleBefore = (await h.rules()).find((r) => r.requestId === id)!;
    const { reply, text } = await h.cmd('bob@contoso.com', `extend ${id} 30m`);
    expect(reply).toMatchObject({ kind: 'extension_pending', approvers: ['carol@contoso.com'] });
    expect(text).toMatch(/waiting|approv/i);
    const after = (await h.app.service.get(id))!;
    expect(after.expiresAt).toBe(before.expiresAt);
    expect(after.pendingExtension).toMatchObject({ by: 'bob@contoso.com', addMs: 1_800_000, decisions: [{ by: 'bob@contoso.com', decision: 'approve' }] });
    expect((await h.rules()).find((r) => r.requestId === id)!.expiresAt).toBe(ruleBefore.expiresAt);
    expect(await h.app.scheduler.expiryDueAt(id)).toBe(before.expiresAt);
    const actions = (await h.audit(id)).map((e) => e.action);
    expect(actions).toContain('grant.extension_requested');
    expect(actions).toContain('grant.extension_vote');
    expect(actions).not.toContain('grant.extended');
    // Clicking again, or over REST, is still one approver: no second vote, no extension.
    expect((await h.cmd('bob@contoso.com', `approve ${id}`)).reply).toMatchObject({ kind: 'rejected', code: 'already_decided' });
    expect((await api(h, 'bob', 'POST', `/requests/${id}/extend`, { duration: '30m' })).status).toBe(409);
    expect((await h.app.service.get(id))!.expiresAt).toBe(before.expiresAt);
    // The requester (not an approver of quorum2) cannot be the second vote on her own grant.
    expect((await h.cmd('alice@contoso.com', `approve ${id}`)).reply).toMatchObject({ kind: 'rejected', code: 'not_approver' });

    // A second approver completes the quorum: now it grows, and the rule and the job follow.
    const done = await h.cmd('carol@contoso.com', `approve ${id}`);
    expect(done.reply).toMatchObject({ kind: 'extended' });
    const extended = (await h.app.service.get(id))!;
    expect(extended.expiresAt! - before.expiresAt!).toBeGreaterThanOrEqual(1_800_000);
    expect(extended.pendingExtension).toBeUndefined();
    expect((await h.rules()).find((r) => r.requestId === id)!.expiresAt).toBe(extended.expiresAt);
    expect(await h.app.scheduler.expiryDueAt(id)).toBe(extended.expiresAt);
    const ext = (await h.audit(id)).find((e) => e.action === 'grant.extended')!;
    expect(ext.details).toMatchObject({ requestedBy: 'bob@contoso.com', approvers: 'bob@contoso.com,carol@contoso.com' });
    await h.cmd('alice@contoso.com', `revoke ${id}`);
  });

  it('over REST the same: 200 with the extension waiting, expiry unchanged', async () => {
    const id = await grant('203.0.113.8');
    const before = (await h.app.service.get(id))!;
    const r = await api(h, 'carol', 'POST', `/requests/${id}/extend`, { duration: '15m' });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ kind: 'extension_pending' });
    expect((await h.app.service.get(id))!.expiresAt).toBe(before.expiresAt);
    // The other approver may also refuse it: the grant keeps its expiry.
    expect((await h.cmd('bob@contoso.com', `deny ${id} reason "not needed"`)).reply).toMatchObject({ kind: 'decided' });
    const after = (await h.app.service.get(id))!;
    expect(after.expiresAt).toBe(before.expiresAt);
    expect(after.pendingExtension).toBeUndefined();
    await h.cmd('alice@contoso.com', `revoke ${id}`);
  });

  it('under quorum 1 one approver is the quorum: the extension applies at once, as before', async () => {
    const id = requestOf((await h.cmd('alice@contoso.com', 'rdp vm1 30m from 203.0.113.9')).reply).id;
    await h.cmd('bob@contoso.com', `approve ${id}`);
    const before = (await h.app.service.get(id))!;
    expect((await h.cmd('carol@contoso.com', `extend ${id} 30m`)).reply).toMatchObject({ kind: 'extended' });
    expect((await h.app.service.get(id))!.expiresAt! - before.expiresAt!).toBeGreaterThanOrEqual(1_800_000);
    await h.cmd('alice@contoso.com', `revoke ${id}`);
  });
});
