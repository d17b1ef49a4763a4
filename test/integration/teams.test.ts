// Microsoft Teams, end to end: real POSTs of Bot Framework activities to /api/messages, replies
// and proactive messages to a local fake Bot Connector (serviceUrl), the real Redis and BullMQ.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/env.js';
import type { AccessRequest } from '../../src/core/types.js';
import { TEST_POLICY_YAML, withWorkflowTargets } from '../fixtures/book.js';
import {
  FakeConnector,
  TENANT,
  actionActivity,
  cardOf,
  channelConversation,
  installActivity,
  messageActivity,
  personalConversation,
  postActivity,
  type ConnectorCall,
  type TeamsUser,
} from '../fakes/connector.js';
import { startHarness, waitFor, type Harness } from './harness.js';
import { p } from '../fixtures/ids.js';

const APPROVALS = '19:approvals@thread.tacv2';
const AUDIT = '19:audit@thread.tacv2';
const user = (name: string, aad: string, upn?: string): TeamsUser => ({ id: `29:1${name}`, name, aadObjectId: aad, ...(upn ? { userPrincipalName: upn } : {}) });
const ALICE = user('alice', '6f1c0c1e-0000-4000-8000-00000000a11c', 'Alice@contoso.com');
const BOB = user('bob', '6f1c0c1e-0000-4000-8000-000000000b0b'); // mapped in the policy file (no UPN needed)
const CAROL = user('carol', '6f1c0c1e-0000-4000-8000-0000000ca201', 'carol@contoso.com');
const MALLORY = user('mallory', '6f1c0c1e-0000-4000-8000-0000000ba11d', 'mallory@contoso.com');
const ERIN = user('erin', '6f1c0c1e-0000-4000-8000-00000000e21a', 'erin@contoso.com');

const POLICY = withWorkflowTargets(TEST_POLICY_YAML).replace('bob@contoso.com: { slack: U024BOB }', `bob@contoso.com: { slack: U024BOB, teams: ${BOB.aadObjectId} }`).replace(
  'approval: { required: true, approvers: [group:oncall], quorum: 1, timeout: PT1H }',
  `approval: { required: true, approvers: [group:oncall], quorum: 1, timeout: PT1H }
    channels: { teams: { approvals: "${APPROVALS}", audit: "${AUDIT}" } }`,
);

let bf: FakeConnector;
let h: Harness;

type Card = Record<string, unknown>;
const text = (c: unknown) => JSON.stringify(c ?? null);
const verbs = (card: Card | undefined) => ((card?.actions as Array<{ verb: string }> | undefined) ?? []).map((a) => a.verb);
const state = async (id: string): Promise<AccessRequest> => (await h.app.service.get(id))!;
const say = (from: TeamsUser, words: string, conversation?: Record<string, unknown>) => postActivity(h.app.url, messageActivity(bf.url, from, words, conversation));
const act = (from: TeamsUser, verb: string, data: Record<string, unknown>, conversation: Record<string, unknown> = channelConversation(APPROVALS)) =>
  postActivity(h.app.url, actionActivity(bf.url, from, verb, data, conversation)) as Promise<{ status: number; body: { statusCode: number; type: string; value: unknown } }>;
const approvalPost = (id: string) => waitFor(`approval card for ${id}`, async () => bf.to(APPROVALS).find((c) => text(cardOf(c)).includes(`Access request ${id}`)));
const lastReplyTo = (u: TeamsUser) => bf.to(personalConversation(u).id).at(-1);

async function request(from: TeamsUser, words: string): Promise<{ id: string; post: ConnectorCall }> {
  const before = bf.to(personalConversation(from).id).length;
  const res = await say(from, words);
  expect(res.status).toBe(200);
  const reply = await waitFor('reply', async () => bf.to(personalConversation(from).id)[before]);
  const id = /Request (r[0-9a-z]{9})/.exec(text(cardOf(reply)))?.[1];
  if (!id) throw new Error(`no request id in ${text(cardOf(reply))}`);
  return { id, post: await approvalPost(id) };
}

beforeAll(async () => {
  bf = await new FakeConnector([ALICE, BOB, CAROL, MALLORY, ERIN]).start();
  const dir = mkdtempSync(join(tmpdir(), 'jit-teams-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  h = await startHarness({ JIT_POLICY_FILE: join(dir, 'policy.yaml'), TEAMS_ALLOW_UNAUTHENTICATED: 'true', TEAMS_SERVICE_URL: bf.url, TEAMS_AUDIT_INTERVAL: '1s' });
  // Each person installed the app (personal scope): the bot keeps their 1:1 conversation.
  for (const u of [ALICE, BOB, CAROL, MALLORY, ERIN]) expect((await postActivity(h.app.url, installActivity(bf.url, u))).status).toBe(200);
});

afterAll(async () => {
  await h?.close();
  await bf?.close();
});

describe('Teams configuration', () => {
  it('an app id needs its password; unauthenticated mode is refused off loopback and beside an app id', () => {
    const id = '00000000-0000-4000-8000-0000000000a1';
    expect(() => loadConfig({ MICROSOFT_APP_ID: id })).toThrow(/MICROSOFT_APP_PASSWORD: missing/);
    expect(() => loadConfig({ MICROSOFT_APP_ID: id, MICROSOFT_APP_PASSWORD: 'x', MICROSOFT_APP_TYPE: 'SingleTenant' })).toThrow(/MICROSOFT_APP_TENANT_ID: missing/);
    // SingleTenant is the default (Azure Bot creates no new multi-tenant bots since 31 July 2025).
    expect(() => loadConfig({ MICROSOFT_APP_ID: id, MICROSOFT_APP_PASSWORD: 'x' })).toThrow(/MICROSOFT_APP_TENANT_ID: missing; a SingleTenant bot \(MICROSOFT_APP_TYPE's default/);
    const tenant = '00000000-0000-4000-8000-00000000c0de';
    expect(loadConfig({ MICROSOFT_APP_ID: id, MICROSOFT_APP_PASSWORD: 'x', MICROSOFT_APP_TENANT_ID: tenant }).MICROSOFT_APP_TYPE).toBe('SingleTenant');
    expect(loadConfig({ MICROSOFT_APP_ID: id, MICROSOFT_APP_TYPE: 'UserAssignedMSI', MICROSOFT_APP_TENANT_ID: tenant }).MICROSOFT_APP_TYPE).toBe('UserAssignedMSI');
    expect(loadConfig({ MICROSOFT_APP_ID: id, MICROSOFT_APP_PASSWORD: 'x', MICROSOFT_APP_TYPE: 'MultiTenant', TEAMS_ALLOWED_TENANTS: tenant }).MICROSOFT_APP_TYPE).toBe('MultiTenant');
    expect(() => loadConfig({ MICROSOFT_APP_TYPE: 'Multi' })).toThrow(/must be SingleTenant \(the default\), UserAssignedMSI, or MultiTenant/);
    expect(() => loadConfig({ MICROSOFT_APP_PASSWORD: 'x' })).toThrow(/MICROSOFT_APP_ID: missing/);
    expect(() => loadConfig({ TEAMS_ALLOW_UNAUTHENTICATED: 'true', HOST: '0.0.0.0', JIT_LOCAL_CHANNEL: 'false' })).toThrow(/TEAMS_ALLOW_UNAUTHENTICATED: .*loopback/);
    expect(() => loadConfig({ MICROSOFT_APP_ID: id, MICROSOFT_APP_PASSWORD: 'x', TEAMS_ALLOW_UNAUTHENTICATED: 'true' })).toThrow(/TEAMS_ALLOW_UNAUTHENTICATED/);
    expect(() => loadConfig({ MICROSOFT_APP_ID: 'bot' })).toThrow(/MICROSOFT_APP_ID: must be/);
  });

  it('with an app id set, an activity without a valid token is refused with 401 and changes nothing', async () => {
    const secured = await startHarness({ MICROSOFT_APP_ID: '00000000-0000-4000-8000-0000000000a1', MICROSOFT_APP_PASSWORD: 'secret', MICROSOFT_APP_TENANT_ID: TENANT, TEAMS_ALLOWED_TENANTS: TENANT, TEAMS_SERVICE_URL: bf.url });
    try {
      const calls = bf.calls.length;
      const none = await postActivity(secured.app.url, messageActivity(bf.url, ALICE, 'rdp vm1 2h from 203.0.113.7'));
      const junk = await postActivity(secured.app.url, messageActivity(bf.url, ALICE, 'rdp vm1 2h from 203.0.113.7'), { authorization: 'Bearer not.a.jwt' });
      expect(none.status).toBe(401);
      expect(junk.status).toBe(401);
      expect(bf.calls.length).toBe(calls);
      const all = await secured.app.service.list(p('dave@contoso.com'), 'all');
      expect(all.kind === 'list' && all.requests).toEqual([]);
    } finally {
      await secured.close();
    }
  });
});

describe('jit in Teams, end to end', () => {
  it('message → card reply → approval card in the channel → Approve invoke → updated card, requester gets connection details → expiry → notice', async () => {
    const res = await say(ALICE, 'jit rdp vm1 4s from 203.0.113.7 reason "INC-7 [x](https://evil.example)"');
    expect(res.status).toBe(200);
    const reply = await waitFor('reply card', async () => lastReplyTo(ALICE));
    expect(reply.op).toBe('reply');
    expect(text(cardOf(reply))).toMatch(/waiting for approval/);
    const id = /Request (r[0-9a-z]{9})/.exec(text(cardOf(reply)))![1]!;

    const post = await approvalPost(id);
    const card = cardOf(post)!;
    // The base card is read-only; approvers get buttons through refresh.userIds.
    expect(verbs(card)).toEqual([]);
    expect((card.refresh as { userIds: string[] }).userIds.sort()).toEqual([BOB.id, CAROL.id].sort());
    for (const part of ['alice@contoso.com', 'vm1', '3389/tcp', '203.0.113.7/32', '4s', 'Offer expires']) expect(text(card)).toContain(part);
    // The link is broken by a zero-width space (no backslashes, which some Teams clients show).
    expect(text(card)).toContain('INC-7 [x]\u200b(https://evil.example)');

    // The refresh an approver's client sends shows Approve / Deny; another user gets the read-only card.
    const bobView = await act(BOB, 'refresh', { requestId: id, scope: 'request' });
    expect(bobView.body.type).toBe('application/vnd.microsoft.card.adaptive');
    expect(verbs(bobView.body.value as Card)).toEqual(['approve', 'deny']);
    const malloryView = await act(MALLORY, 'refresh', { requestId: id, scope: 'request' });
    expect(verbs(malloryView.body.value as Card)).toEqual([]);

    const approve = await act(BOB, 'approve', { requestId: id });
    expect(approve.status).toBe(200);
    expect(approve.body.statusCode).toBe(200);
    expect(approve.body.type).toBe('application/vnd.microsoft.card.adaptive');
    const after = approve.body.value as Card;
    expect(verbs(after)).toEqual([]);
    expect(text(after)).toContain('Approved by bob@contoso.com at');

    // The channel's copy is updated for everyone.
    const update = await waitFor('channel card updated', async () =>
      bf.updates().find((u) => u.conversationId === APPROVALS && u.activityId === post.resourceId && text(cardOf(u)).includes('Approved by bob@contoso.com') && text(cardOf(u)).includes('Open until')),
    );
    expect(verbs(cardOf(update))).toEqual([]);
    const open = await waitFor('connection details', async () => bf.to(personalConversation(ALICE).id).find((c) => text(cardOf(c)).includes('mstsc /v:vm1.contoso.example:3389')));
    expect(verbs(cardOf(open))).toEqual(['revoke']);
    expect((await h.rules()).filter((r) => r.requestId === id)).toHaveLength(1);

    await waitFor('rule removed at expiry', async () => (await h.rules()).every((r) => r.requestId !== id), 15_000);
    await waitFor('closed notice', async () => bf.to(personalConversation(ALICE).id).find((c) => text(cardOf(c)).includes('expired; the port is closed') && text(cardOf(c)).includes(id)));
    expect((await state(id)).status).toBe('expired');

    // The audit channel has every event of the request, in order.
    const log = (await h.audit(id)).map((e) => e.action);
    const posted = await waitFor('audit lines', async () => {
      const actions = bf
        .to(AUDIT)
        .flatMap((c) => String(c.body.text ?? '').split('\n'))
        .filter((l) => l.includes(id))
        .map((l) => /\*\*([a-z_.]+)\*\*/.exec(l)?.[1]);
      return actions.length >= log.length ? actions : null;
    }, 10_000);
    expect(posted).toEqual(log);
  });

  it('@mention in a channel: the mention is stripped and the answer goes to the thread', async () => {
    const conv = channelConversation('19:general@thread.tacv2');
    const res = await say(ALICE, 'help', conv);
    expect(res.status).toBe(200);
    const reply = await waitFor('reply in channel', async () => bf.to(conv.id).at(-1));
    expect(text(cardOf(reply))).toContain('jit-bot commands');
    expect(text(cardOf(reply))).toMatch(/jit (rdp|ssh) (vm1|db1|dev1)/);
  });

  it('a bad command gets the helpful rejection as a card and creates nothing', async () => {
    const before = await h.app.service.list(p('dave@contoso.com'), 'all');
    await say(ALICE, 'rdp vm1 99h from 203.0.113.7');
    const reply = await waitFor('reply', async () => bf.to(personalConversation(ALICE).id).find((c) => text(cardOf(c)).includes('at most 3h')));
    expect(text(cardOf(reply))).toContain('Not done');
    expect(await h.app.service.list(p('dave@contoso.com'), 'all')).toEqual(before);
  });
});

describe('who may act on a card', () => {
  it('refuses a non-approver, the requester, and a spoofed user in the data; the card stays as it was', async () => {
    const { id } = await request(ALICE, 'rdp vm1 1h from 203.0.113.7');
    // Home cards (refreshed on every change of a request) aside: the approval card stays as it was.
    const cardUpdates = () => bf.updates().filter((c) => !text(cardOf(c)).includes('My pending requests')).length;
    const updates = cardUpdates();
    const mallory = await act(MALLORY, 'approve', { requestId: id });
    expect(mallory.body.type).toBe('application/vnd.microsoft.activity.message');
    // mallory (no role) may not see the request: told it does not exist (no target, no approvers).
    expect(String(mallory.body.value)).toMatch(/there is no request r[0-9a-z]{9} that you can see/);
    // Card data naming an approver changes nothing: the clicker is the activity's sender.
    const spoofed = await act(MALLORY, 'approve', { requestId: id, user: BOB.id, aadObjectId: BOB.aadObjectId, by: 'bob@contoso.com' });
    expect(String(spoofed.body.value)).toMatch(/there is no request r[0-9a-z]{9} that you can see/);
    const own = await request(BOB, 'rdp vm1 1h from 203.0.113.8');
    const self = await act(BOB, 'approve', { requestId: own.id });
    expect(String(self.body.value)).toMatch(/cannot approve your own request/);
    const bogus = await act(BOB, 'approve', { requestId: 'not-an-id' });
    expect(String(bogus.body.value)).toMatch(/does not name a request/);
    expect((await state(id)).status).toBe('pending');
    expect((await state(own.id)).status).toBe('pending');
    expect(cardUpdates()).toBe(updates);
    await h.app.service.revoke(p('alice@contoso.com'), id);
    await h.app.service.revoke(p('bob@contoso.com'), own.id);
  });

  it('Deny with a reason from the card; the requester is told; a second click gets "already decided"', async () => {
    const { id } = await request(ALICE, 'rdp vm1 1h from 203.0.113.7');
    const deny = await act(CAROL, 'deny', { requestId: id, reason: 'no change window' });
    expect(deny.body.type).toBe('application/vnd.microsoft.card.adaptive');
    expect(text(deny.body.value)).toContain('Denied by carol@contoso.com');
    expect(text(deny.body.value)).toContain('no change window');
    const again = await act(BOB, 'approve', { requestId: id });
    expect(String(again.body.value)).toMatch(/decision is over|denied/);
    expect((await state(id)).status).toBe('denied');
    await waitFor('requester told', async () => bf.to(personalConversation(ALICE).id).find((c) => text(cardOf(c)).includes('denied by carol@contoso.com')));
  });

  it('the Close button revokes; the reminder offers Extend; a late Extend opens nothing', async () => {
    const { id } = await request(ALICE, 'rdp vm1 1h from 203.0.113.7');
    await act(BOB, 'approve', { requestId: id });
    await waitFor('open', async () => ((await state(id)).status === 'active' ? true : null));
    const notMine = await act(MALLORY, 'revoke', { requestId: id }, personalConversation(MALLORY));
    expect(String(notMine.body.value)).toMatch(/there is no request r[0-9a-z]{9} that you can see/);
    const close = await act(ALICE, 'revoke', { requestId: id }, personalConversation(ALICE));
    expect(String(close.body.value)).toMatch(/revoked/);
    expect((await h.rules()).some((r) => r.requestId === id)).toBe(false);
    const late = await act(ALICE, 'extend', { requestId: id, addMs: 1_800_000 }, personalConversation(ALICE));
    expect(String(late.body.value)).toMatch(/only an active grant can be extended/);
  });
});

describe('workflow in Teams', () => {
  it('the expiry reminder card offers Extend; the extension card goes to approvers, who approve it on the card', async () => {
    const { id } = await request(ALICE, 'ssh rem1 5s from 203.0.113.7');
    await act(BOB, 'approve', { requestId: id });
    const reminder = await waitFor('reminder card', async () => bf.to(personalConversation(ALICE).id).find((c) => verbs(cardOf(c)).includes('extend') && text(cardOf(c)).includes(id)), 10_000);
    const extend = (cardOf(reminder)!.actions as Array<{ verb: string; data: { requestId: string; addMs: number } }>)[0]!;
    expect(extend.data).toEqual({ requestId: id, addMs: 20_000 });
    const before = await state(id);
    const asked = await act(ALICE, 'extend', extend.data, personalConversation(ALICE));
    expect(String(asked.body.value)).toMatch(/waiting for approval/);
    const extCard = await waitFor('extension card', async () => bf.to(APPROVALS).find((c) => text(cardOf(c)).includes(`Extension of ${id}`)));
    expect(verbs(cardOf(extCard))).toEqual([]); // read-only base; approvers get buttons by refresh
    const bobView = await act(BOB, 'refresh', { requestId: id, scope: 'extension' });
    expect(verbs(bobView.body.value as Card)).toEqual(['ext_approve', 'ext_deny']);
    // The old request card's Approve cannot approve the extension.
    const stale = await act(CAROL, 'approve', { requestId: id });
    expect(String(stale.body.value)).toMatch(/decision is over/);
    const ok = await act(CAROL, 'ext_approve', { requestId: id });
    expect(text(ok.body.value)).toContain('Extension approved');
    expect((await state(id)).expiresAt).toBe(before.expiresAt! + 20_000);
    expect(await h.app.scheduler.expiryDueAt(id)).toBe(before.expiresAt! + 20_000);
    await h.app.service.revoke(p('alice@contoso.com'), id);
    const late = await act(ALICE, 'extend', extend.data, personalConversation(ALICE));
    expect(String(late.body.value)).toMatch(/only an active grant can be extended/);
  });

  it('escalation: the channel card says it escalated and the escalation approver gets a card to decide on', async () => {
    const { id, post } = await request(ALICE, 'ssh esc1 1h from 203.0.113.7');
    await waitFor('escalated card', async () => bf.updates().find((u) => u.activityId === post.resourceId && text(cardOf(u)).includes('Escalated') && text(cardOf(u)).includes('erin@contoso.com')), 10_000);
    const dm = await waitFor('card to erin', async () => bf.to(personalConversation(ERIN).id).find((c) => text(cardOf(c)).includes(`Access request ${id}`)));
    expect(verbs(cardOf(dm))).toEqual(['approve', 'deny']);
    const ok = await act(ERIN, 'approve', { requestId: id }, personalConversation(ERIN));
    expect(text(ok.body.value)).toContain('Approved by erin@contoso.com');
    await h.app.service.revoke(p('alice@contoso.com'), id);
  });

  it('a request nobody decides times out: the card and the requester say so', async () => {
    const { id, post } = await request(ALICE, 'ssh quick1 1h from 203.0.113.7');
    await waitFor('timed-out card', async () => bf.updates().find((u) => u.activityId === post.resourceId && text(cardOf(u)).includes('timed out')), 10_000);
    await waitFor('requester told', async () => bf.to(personalConversation(ALICE).id).find((c) => text(cardOf(c)).includes('in time') && text(cardOf(c)).includes(id)));
  });
});

describe('cards the Bot Connector refuses', () => {
  const fallbacks = async (id: string) => (await h.audit(id)).filter((e) => e.action === 'notify.card_fallback');

  it('a refused approval card goes out as text with the jit commands, is audited, and later becomes the decided card', async () => {
    bf.failNext(APPROVALS, 400, 'BadArgument');
    const before = bf.to(personalConversation(ALICE).id).length;
    await say(ALICE, 'rdp vm1 1h from 203.0.113.7');
    const reply = await waitFor('reply', async () => bf.to(personalConversation(ALICE).id)[before]);
    const id = /Request (r[0-9a-z]{9})/.exec(text(cardOf(reply)))![1]!;
    const stand = await waitFor('plain-text stand-in', async () => bf.to(APPROVALS).find((c) => String(c.body.text ?? '').includes(`jit approve ${id}`)));
    expect(cardOf(stand)).toBeUndefined();
    expect(String(stand.body.text)).toContain(`Access request ${id}: alice@contoso.com asks for 3389/tcp on vm1`);
    const [audit] = await waitFor('audited', async () => ((await fallbacks(id)).length ? fallbacks(id) : null));
    expect(audit!.details).toMatchObject({ platform: 'teams', card: 'request', destination: APPROVALS, error: 'BadArgument', delivered: 'text' });
    // The stand-in is a card copy: deciding turns it into the decided card.
    await act(BOB, 'approve', { requestId: id });
    await waitFor('stand-in updated', async () => bf.updates().find((u) => u.activityId === stand.resourceId && text(cardOf(u)).includes('Approved by bob@contoso.com')));
    await h.app.service.revoke(p('alice@contoso.com'), id);
  });
});

describe('conversation references', () => {
  it('are kept in Redis per conversation and per principal (captured on install)', async () => {
    const keys = await h.app.redis.keys(`${h.prefix}:teams:ref:user:*`);
    expect(keys.map((k) => k.split(':').pop()).sort()).toEqual(['alice@contoso.com', 'bob@contoso.com', 'carol@contoso.com', 'erin@contoso.com', 'mallory@contoso.com']);
    const ref = JSON.parse((await h.app.redis.get(`${h.prefix}:teams:ref:user:alice@contoso.com`))!) as { serviceUrl: string; conversation: { id: string; tenantId: string } };
    expect(ref.serviceUrl).toBe(bf.url);
    expect(ref.conversation).toMatchObject({ id: personalConversation(ALICE).id, tenantId: TENANT });
  });
});

describe('cards as Teams takes them', () => {
  it('the connector refused no card the bot sent in this whole run (official Adaptive Card 1.5 schema, ~28 KB)', () => {
    expect(bf.calls.filter((c) => c.op === 'send' || c.op === 'reply' || c.op === 'update').length).toBeGreaterThan(10);
    expect(bf.refused).toEqual([]);
  });
});
