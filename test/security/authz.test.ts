// Issue 17, item 5: "a group that lost its role still approves". vm1's policy names its approvers
// (group:oncall); the group's JIT Approver role is then removed. Being named is not enough any
// more: deciding needs the approve permission at a scope covering the target too, and a principal
// left with no role sees nothing (list, status, vms, audit), over chat and over the REST API.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyBook } from '../../src/core/policy.js';
import { testBook } from '../fixtures/book.js';
import { requestOf, startHarness, type Harness } from '../integration/harness.js';
import { API_TOKENS, api } from './lib.js';
import { p } from '../fixtures/ids.js';

let h: Harness;
let full: PolicyBook;
/** The fixture with group:oncall (bob, carol) still named as vm1's approvers but without its role. */
const withoutRole = (): PolicyBook => {
  const book = testBook();
  return { ...book, roles: book.roles.filter((r) => !(r.principal === 'group:oncall' && r.role === 'JIT Approver')) };
};

beforeAll(async () => {
  h = await startHarness({ JIT_API_TOKENS: API_TOKENS });
  full = h.app.service.policyBook();
});
afterAll(async () => {
  h?.app.service.setPolicyBook(full);
  await h?.close();
});

describe('a named approver group without the JIT Approver role', () => {
  it('its members cannot approve or deny (chat, REST, card button); the request stays pending with no decision', async () => {
    const id = requestOf((await h.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.7')).reply).id;
    const before = (await h.audit(id)).map((e) => e.action);
    h.app.service.setPolicyBook(withoutRole());
    try {
      for (const who of ['bob', 'carol'] as const) {
        for (const text of [`approve ${id}`, `deny ${id} reason "no"`]) {
          const { reply } = await h.cmd(`${who}@contoso.com`, text);
          expect(reply, `${who}: ${text}`).toMatchObject({ kind: 'rejected' });
        }
        expect((await api(h, who, 'POST', `/requests/${id}/approve`)).status).toBe(404);
        expect((await api(h, who, 'POST', `/requests/${id}/deny`, { reason: 'no' })).status).toBe(404);
        const click = await api(h, who, 'POST', '/card-actions', { verb: 'approve', data: { requestId: id } });
        expect(click.status).toBe(404);
        expect(click.raw).not.toContain('vm1');
      }
      expect(await h.app.service.get(id)).toMatchObject({ status: 'pending', decisions: [] });
      expect((await h.audit(id)).map((e) => e.action)).toEqual(before);
      // Nobody is told to approve it: the named approvers without the permission are not approvers.
      expect(await h.app.service.approversFor((await h.app.service.get(id))!)).toEqual([]);
    } finally {
      h.app.service.setPolicyBook(full);
    }
    // With the role back, the same click decides.
    expect((await api(h, 'carol', 'POST', `/requests/${id}/approve`)).status).toBe(200);
    await h.cmd('dave@contoso.com', `revoke ${id}`);
  });

  it('a member left with no role at all (carol) sees nothing: list, status, vms, audit, over chat and REST', async () => {
    const id = requestOf((await h.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.8 reason "INC-1 secret host"')).reply).id;
    h.app.service.setPolicyBook(withoutRole());
    try {
      const carol = 'carol@contoso.com';
      for (const scope of ['mine', 'all', 'pending', 'active']) expect((await h.cmd(carol, `list ${scope}`)).reply).toMatchObject({ kind: 'list', requests: [] });
      expect((await h.cmd(carol, `status ${id}`)).reply).toMatchObject({ kind: 'rejected', code: 'not_found' });
      expect((await h.cmd(carol, 'vms')).reply).toEqual({ kind: 'inventory', configured: [], notConfigured: [], unsupported: [] });
      expect((await h.cmd(carol, 'audit')).reply).toMatchObject({ kind: 'audit', rows: [] });
      expect((await api(h, 'carol', 'GET', '/requests')).json).toEqual({ requests: [] });
      const one = await api(h, 'carol', 'GET', `/requests/${id}`);
      expect(one.status).toBe(404);
      expect(one.raw).not.toContain('INC-1');
      expect((await api(h, 'carol', 'GET', '/targets')).json).toMatchObject({ configured: [], notConfigured: [], unsupported: [] });
      expect((await api(h, 'carol', 'GET', '/audit')).json).toEqual({ rows: [], truncated: false });
      // bob keeps JIT Requester on prod: he sees his own requests, not alice's.
      expect((await api(h, 'bob', 'GET', `/requests/${id}`)).status).toBe(404);
    } finally {
      h.app.service.setPolicyBook(full);
    }
    await h.cmd('dave@contoso.com', `revoke ${id}`);
  });

  it('an escalation approver needs the permission too: named in the escalation alone decides nothing', async () => {
    // quick1 escalates to erin, who holds JIT Reader only: she sees the request but may not decide.
    const book = testBook();
    const quick = book.policies.find((p) => p.name === 'quick1')!;
    const escalated: PolicyBook = {
      ...book,
      policies: book.policies.map((pd) => (pd === quick ? { ...pd, approval: { ...pd.approval, timeoutMs: 3600_000, escalation: { afterMs: 1, approvers: [p('erin@contoso.com')] } } } : pd)),
    };
    h.app.service.setPolicyBook(escalated);
    try {
      const id = requestOf((await h.cmd('alice@contoso.com', 'ssh quick1 30m from 203.0.113.9')).reply).id;
      await h.app.service.workflow('escalate', id);
      expect((await h.app.service.get(id))!.escalatedAt).toBeDefined();
      expect((await h.cmd('erin@contoso.com', `approve ${id}`)).reply).toMatchObject({ kind: 'rejected', code: 'not_approver' });
      expect(await h.app.service.approversFor((await h.app.service.get(id))!)).not.toContain('erin@contoso.com');
      expect(await h.app.service.get(id)).toMatchObject({ status: 'pending', decisions: [] });
      await h.cmd('dave@contoso.com', `revoke ${id}`);
    } finally {
      h.app.service.setPolicyBook(full);
    }
  });
});
