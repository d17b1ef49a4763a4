// Issue 17 item 8: a Teams activity from a tenant outside TEAMS_ALLOWED_TENANTS (default: the
// bot's own tenant) is refused with a clear message, before anything is read (no member look-up)
// or stored (no conversation reference, no request). A MultiTenant bot with no allow-list does
// not start. Real POSTs to /api/messages with channel-service tokens the bot accepts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/env.js';
import { TENANT, actionActivity, cardOf, channelConversation, messageActivity, personalConversation, postActivity, type TeamsUser } from '../fakes/connector.js';
import { waitFor } from '../integration/harness.js';
import { ALICE, APP_ID, APPROVALS, BOB, startSecuredTeams, type SecuredTeams } from './secured-teams.js';
import { p } from '../fixtures/ids.js';

const FOREIGN = '0badc0de-0000-4000-8000-00000000f0e1';
// A user of another organisation whose UPN claims a principal's name (a guest-like or look-alike account).
const OUTSIDER: TeamsUser = { id: '29:1outsider', name: 'outsider', aadObjectId: '0badc0de-0000-4000-8000-0000000a11ce', userPrincipalName: 'alice@contoso.com' };

// Same tenant, another account whose UPN is bob@contoso.com (Bob is pinned to his AAD id in the policy).
const BOB_LOOKALIKE: TeamsUser = { id: '29:1bob2', name: 'bob2', aadObjectId: '6f1c0c1e-0000-4000-8000-000000000b02', userPrincipalName: 'Bob@contoso.com' };

let t: SecuredTeams;

beforeAll(async () => {
  t = await startSecuredTeams({}, [OUTSIDER, BOB_LOOKALIKE]);
});

afterAll(async () => {
  await t?.close();
});

const bearer = () => ({ authorization: `Bearer ${t.idp.channelToken(APP_ID, t.bf.url)}` });
const foreignConv = (u: TeamsUser) => ({ ...personalConversation(u), tenantId: FOREIGN });
const foreign = { channelData: { tenant: { id: FOREIGN } } };
const teamsKeys = () => t.h.app.redis.keys(`${t.h.prefix}:teams:*`);
const allRequests = async () => {
  const r = await t.h.app.service.list(p('dave@contoso.com'), 'all');
  return r.kind === 'list' ? r.requests.map((x) => `${x.id}:${x.status}`) : [];
};

describe('Teams tenant allow-list', () => {
  it('a message from another tenant gets a refusal card; no member look-up, nothing stored, no request', async () => {
    const keys = await teamsKeys();
    const requests = await allRequests();
    const calls = t.bf.calls.length;
    const res = await postActivity(t.h.app.url, messageActivity(t.bf.url, OUTSIDER, 'rdp vm1 1h from 203.0.113.7', foreignConv(OUTSIDER), foreign), bearer());
    expect(res.status).toBe(200);
    const reply = await waitFor('refusal', async () => t.bf.to(foreignConv(OUTSIDER).id).at(-1));
    const card = JSON.stringify(cardOf(reply)).replace(/\\\\/g, '');
    expect(card).toContain(`only the Microsoft 365 organisations it is set up for, and yours (tenant ${FOREIGN}) is not one of them`);
    expect(card).toContain('Nothing was read or changed');
    // The only connector call is the refusal: no member look-up (GET members/…).
    expect(t.bf.calls.slice(calls).map((c) => c.op)).toEqual(['reply']);
    expect(await teamsKeys()).toEqual(keys);
    expect(await allRequests()).toEqual(requests);
  });

  it('read commands from another tenant are refused too (list, policy, help)', async () => {
    for (const words of ['list all', 'policy vm1', 'help']) {
      const before = t.bf.to(foreignConv(OUTSIDER).id).length;
      await postActivity(t.h.app.url, messageActivity(t.bf.url, OUTSIDER, words, foreignConv(OUTSIDER), foreign), bearer());
      const reply = await waitFor('refusal', async () => t.bf.to(foreignConv(OUTSIDER).id)[before]);
      expect(JSON.stringify(cardOf(reply))).toMatch(/is not one of them/);
      expect(JSON.stringify(cardOf(reply))).not.toMatch(/vm1\.contoso\.example|Requests|jit rdp/);
    }
  });

  it('a card action (approve) from another tenant is answered with the refusal; the request stays pending', async () => {
    const before = t.bf.to(personalConversation(ALICE).id).length;
    await postActivity(t.h.app.url, messageActivity(t.bf.url, ALICE, 'rdp vm1 1h from 203.0.113.7'), bearer());
    const reply = await waitFor('reply', async () => t.bf.to(personalConversation(ALICE).id)[before]);
    const id = /Request (r[0-9a-z]{9})/.exec(JSON.stringify(cardOf(reply)))![1]!;
    // Bob's AAD id (an approver pinned in the policy), but the activity comes from another tenant.
    const conv = { ...channelConversation(APPROVALS), tenantId: FOREIGN };
    const approve = await postActivity(t.h.app.url, actionActivity(t.bf.url, BOB, 'approve', { requestId: id }, conv, undefined), bearer());
    expect(approve.status).toBe(200);
    expect(approve.body).toMatchObject({ statusCode: 200, type: 'application/vnd.microsoft.activity.message' });
    expect(String((approve.body as { value: unknown }).value)).toMatch(/is not one of them/);
    // channelData says our tenant, conversation.tenantId another: refused as well.
    const mixed = await postActivity(t.h.app.url, actionActivity(t.bf.url, BOB, 'approve', { requestId: id }, conv), bearer());
    expect(String((mixed.body as { value: unknown }).value)).toMatch(/is not one of them/);
    // No tenant at all: refused.
    const bare = actionActivity(t.bf.url, BOB, 'approve', { requestId: id }, { ...channelConversation(APPROVALS), tenantId: undefined });
    const none = await postActivity(t.h.app.url, { ...bare, channelData: {} }, bearer());
    expect(String((none.body as { value: unknown }).value)).toMatch(/tenant unknown/);
    expect((await t.h.get(id))?.status).toBe('pending');
    // The same click from the allowed tenant works (control).
    const ok = await postActivity(t.h.app.url, actionActivity(t.bf.url, BOB, 'approve', { requestId: id }, channelConversation(APPROVALS)), bearer());
    expect(ok.body).toMatchObject({ type: 'application/vnd.microsoft.card.adaptive' });
    expect((await t.h.get(id))?.status).toBe('active');
    await t.h.app.service.revoke(p('alice@contoso.com'), id);
  });

  it('configuration: MultiTenant needs an allow-list (or its own tenant id); SingleTenant defaults to its tenant; ids must be GUIDs', () => {
    const app = { MICROSOFT_APP_ID: APP_ID, MICROSOFT_APP_PASSWORD: 'x', MICROSOFT_APP_TYPE: 'MultiTenant' };
    expect(() => loadConfig(app)).toThrow(/TEAMS_ALLOWED_TENANTS: missing; a MultiTenant bot can be installed by any Microsoft 365 organisation/);
    expect(loadConfig({ ...app, MICROSOFT_APP_TENANT_ID: TENANT }).TEAMS_ALLOWED_TENANTS).toEqual([TENANT]);
    expect(loadConfig({ ...app, MICROSOFT_APP_TYPE: 'SingleTenant', MICROSOFT_APP_TENANT_ID: TENANT.toUpperCase() }).TEAMS_ALLOWED_TENANTS).toEqual([TENANT]);
    expect(loadConfig({ ...app, TEAMS_ALLOWED_TENANTS: `${TENANT}, ${FOREIGN.toUpperCase()}` }).TEAMS_ALLOWED_TENANTS).toEqual([TENANT, FOREIGN]);
    expect(() => loadConfig({ ...app, TEAMS_ALLOWED_TENANTS: 'contoso.onmicrosoft.com' })).toThrow(/TEAMS_ALLOWED_TENANTS: "contoso.onmicrosoft.com" is not a tenant id/);
  });
});

describe('Teams identity pin', () => {
  it('a principal mapped to an AAD object id is that account only: another account with the same UPN cannot act as it', async () => {
    const before = t.bf.to(personalConversation(ALICE).id).length;
    await postActivity(t.h.app.url, messageActivity(t.bf.url, ALICE, 'rdp vm1 1h from 203.0.113.7'), bearer());
    const reply = await waitFor('reply', async () => t.bf.to(personalConversation(ALICE).id)[before]);
    const id = /Request (r[0-9a-z]{9})/.exec(JSON.stringify(cardOf(reply)))![1]!;
    const approve = await postActivity(t.h.app.url, actionActivity(t.bf.url, BOB_LOOKALIKE, 'approve', { requestId: id }, channelConversation(APPROVALS)), bearer());
    expect(String((approve.body as { value: unknown }).value)).toMatch(/bob@contoso\.com is mapped to another Teams account under principals in the policy file/);
    const list = t.bf.to(personalConversation(BOB_LOOKALIKE).id).length;
    await postActivity(t.h.app.url, messageActivity(t.bf.url, BOB_LOOKALIKE, 'list all'), bearer());
    const answer = await waitFor('answer', async () => t.bf.to(personalConversation(BOB_LOOKALIKE).id)[list]);
    expect(JSON.stringify(cardOf(answer))).toMatch(/mapped to another Teams account/);
    expect((await t.h.get(id))?.status).toBe('pending');
    await t.h.app.service.revoke(p('alice@contoso.com'), id);
  });
});
