// Teams' request form and home card, end to end: real POSTs of Bot Framework activities to
// /api/messages, replies and updates through a local fake Bot Connector (which refuses a card that
// breaks the official Adaptive Card 1.5 schema or Teams' ~28 KB limit), the real Redis and BullMQ.
// Alice may request 1,000+ VMs (a search narrows the form's list), Erin may request none.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV, TEST_POLICY_YAML, vmId } from '../fixtures/book.js';
import { cardBytes, cardProblems, TEAMS_CARD_BUDGET_BYTES } from '../fixtures/adaptive-card-schema.js';
import { FakeConnector, actionActivity, cardOf, channelConversation, installActivity, messageActivity, personalConversation, postActivity, type TeamsUser } from '../fakes/connector.js';
import { startHarness, waitFor, type Harness } from './harness.js';
import { p } from '../fixtures/ids.js';
import type { PrincipalId } from '../../src/core/ids.js';

const user = (name: string, aad: string): TeamsUser => ({ id: `29:1${name}`, name, aadObjectId: aad, userPrincipalName: `${name}@contoso.com` });
const ALICE = user('alice', '6f1c0c1e-0000-4000-8000-00000000a11c');
const BOB = user('bob', '6f1c0c1e-0000-4000-8000-000000000b0b');
const ERIN = user('erin', '6f1c0c1e-0000-4000-8000-00000000e21a');

const BULK = 1000;
const POLICY = TEST_POLICY_YAML.replace(
  'targets:\n',
  `targets:\n${Array.from({ length: BULK }, (_, i) => `  bulk-${String(i).padStart(4, '0')}-westeurope: { id: ${vmId(DEV, `bulk-${String(i).padStart(4, '0')}-westeurope`)}, os: linux }\n`).join('')}`,
);

type Card = Record<string, unknown>;
let bf: FakeConnector;
let h: Harness;

const say = (from: TeamsUser, words: string) => postActivity(h.app.url, messageActivity(bf.url, from, words));
const act = async (from: TeamsUser, verb: string, data: Record<string, unknown>) => {
  const res = (await postActivity(h.app.url, actionActivity(bf.url, from, verb, data, personalConversation(from)))) as { status: number; body: { statusCode: number; type: string; value: unknown } };
  expect(res.status).toBe(200);
  return res.body;
};
/** The card the next message to `u` carries, after `words`. */
async function reply(u: TeamsUser, words: string): Promise<{ card: Card; activityId: string }> {
  const conv = personalConversation(u).id;
  const before = bf.to(conv).length;
  expect((await say(u, words)).status).toBe(200);
  const call = await waitFor(`reply to ${words}`, async () => bf.to(conv)[before]);
  return { card: cardOf(call)!, activityId: call.resourceId! };
}
function elements(node: unknown): Array<Record<string, unknown>> {
  if (Array.isArray(node)) return node.flatMap(elements);
  if (!node || typeof node !== 'object') return [];
  const o = node as Record<string, unknown>;
  return [o, ...Object.values(o).flatMap(elements)];
}
const byId = (card: unknown, id: string) => elements(card).find((e) => e.id === id);
const executes = (card: unknown) => elements(card).filter((e) => e.type === 'Action.Execute') as Array<{ verb: string; title: string; data?: Record<string, unknown> }>;
const within = (card: unknown) => {
  expect(cardProblems(card)).toEqual([]);
  expect(cardBytes(card)).toBeLessThanOrEqual(TEAMS_CARD_BUDGET_BYTES);
};
const mine = async (who: PrincipalId) => (await h.app.service.listVisible(who, { requester: who, limit: 200 })).length;

beforeAll(async () => {
  bf = await new FakeConnector([ALICE, BOB, ERIN]).start();
  const dir = mkdtempSync(join(tmpdir(), 'jit-teams-forms-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  h = await startHarness({ JIT_POLICY_FILE: join(dir, 'policy.yaml'), TEAMS_ALLOW_UNAUTHENTICATED: 'true', TEAMS_SERVICE_URL: bf.url });
}, 60_000);

afterAll(async () => {
  await h?.close();
  await bf?.close();
});

describe('Teams: the request form and the home card', () => {
  it('installing the app posts the home card (refreshed for its owner by the jitHome verb)', async () => {
    for (const u of [ALICE, BOB, ERIN]) expect((await postActivity(h.app.url, installActivity(bf.url, u))).status).toBe(200);
    const home = await waitFor('alice home', async () => bf.to(personalConversation(ALICE).id).map(cardOf).find((c) => JSON.stringify(c).includes('My open access')));
    within(home);
    expect(home!.refresh).toMatchObject({ action: { verb: 'jitHome' }, userIds: [ALICE.id] });
    expect(executes(home).map((a) => a.verb)).toContain('jitForm');
    expect(bf.refused).toEqual([]);
  });

  it('`jit` alone answers the form: choice sets, justification, source, date and time; 1,000 targets within Teams\' limits, searchable', async () => {
    const { card } = await reply(ALICE, 'jit');
    within(card);
    expect(cardBytes(card)).toBeLessThanOrEqual(TEAMS_CARD_BUDGET_BYTES);
    const targets = byId(card, 'target') as { type: string; choices: Array<{ value: string }> };
    expect(targets.type).toBe('Input.ChoiceSet');
    expect(targets.choices.length).toBe(100);
    expect(byId(card, 'filter')).toMatchObject({ type: 'Input.Text' });
    for (const id of ['access', 'duration']) expect(byId(card, id)).toMatchObject({ type: 'Input.ChoiceSet' });
    expect(byId(card, 'justification')).toMatchObject({ type: 'Input.Text' });
    expect(byId(card, 'source')).toMatchObject({ type: 'Input.Text' });
    expect(byId(card, 'startDate')).toMatchObject({ type: 'Input.Date' });
    expect(byId(card, 'startTime')).toMatchObject({ type: 'Input.Time' });
    expect(executes(card).map((a) => a.verb)).toEqual(expect.arrayContaining(['jitFormChoices', 'jitRequest']));

    // The search narrows the list and picks the match; its access choices follow (vm1: RDP and SSH).
    const found = await act(ALICE, 'jitFormChoices', { form: 'request', filter: 'vm1', target: targets.choices[0]!.value });
    expect(found.type).toBe('application/vnd.microsoft.card.adaptive');
    within(found.value);
    expect(byId(found.value, 'target')).toMatchObject({ value: 'vm1' });
    expect((byId(found.value, 'access') as { choices: Array<{ value: string }> }).choices.map((c) => c.value)).toEqual(['rdp', 'ssh']);
    // Another target: dev1's choices (its policy adds 8443/tcp, at most 30 minutes).
    const dev = await act(ALICE, 'jitFormChoices', { form: 'request', target: 'dev1', access: 'port:8443/tcp' });
    expect((byId(dev.value, 'access') as { choices: Array<{ value: string }> }).choices.map((c) => c.value)).toContain('port:8443/tcp');
    expect((byId(dev.value, 'duration') as { choices: Array<{ title: string }> }).choices.map((c) => c.title).at(-1)).toBe('30m');
  });

  it('an invalid submission answers the form again with the error beside the field, and creates nothing', async () => {
    const before = await mine(p('alice@contoso.com'));
    const bad = await act(ALICE, 'jitRequest', { form: 'request', target: 'vm1', access: 'rdp', duration: '3600000', source: '999.1.1.1', justification: 'INC-1' });
    expect(bad.type).toBe('application/vnd.microsoft.card.adaptive');
    within(bad.value);
    const body = (bad.value as { body: Card[] }).body;
    const at = body.findIndex((e) => e.id === 'source');
    expect(body[at + 1]).toMatchObject({ id: 'sourceError', color: 'Attention' });
    expect(byId(bad.value, 'source')).toMatchObject({ value: '999.1.1.1' });
    expect(byId(bad.value, 'justification')).toMatchObject({ value: 'INC-1' });
    // A start date without a time is refused beside the start too.
    const noTime = await act(ALICE, 'jitRequest', { form: 'request', target: 'vm1', access: 'rdp', duration: '3600000', source: '203.0.113.7', startDate: '2030-01-01' });
    expect(byId(noTime.value, 'startError')).toBeDefined();
    expect(await mine(p('alice@contoso.com'))).toBe(before);
  });

  it('a valid submission creates the request; the approver approves on their home card (the approval cards\' handler); the requester\'s home card shows the grant', async () => {
    const aliceHome = await reply(ALICE, 'jit home');
    const bobHome = await reply(BOB, 'home');
    const ok = await act(ALICE, 'jitRequest', { form: 'request', target: 'vm1', access: 'rdp', duration: '3600000', source: '203.0.113.7', justification: 'INC-42 patching' });
    expect(ok.type).toBe('application/vnd.microsoft.card.adaptive');
    const id = /Request (r[0-9a-z]{9})/.exec(JSON.stringify(ok.value))?.[1];
    expect(id).toBeDefined();
    expect((await h.get(id!))?.status).toBe('pending');

    // Bob's posted home card is updated (refreshHome) with the request and its buttons.
    const bobsUpdate = await waitFor('bob home updated', async () => bf.updates().find((c) => c.activityId === bobHome.activityId && JSON.stringify(cardOf(c)).includes(id!)));
    const approve = executes(cardOf(bobsUpdate)).find((a) => a.verb === 'approve' && a.data?.requestId === id);
    expect(approve).toBeDefined();

    // The requester cannot approve her own request from a home card click.
    const self = await act(ALICE, 'approve', { requestId: id, home: true });
    expect(JSON.stringify(self.value)).toMatch(/✗/);
    expect((await h.get(id!))?.status).toBe('pending');

    const done = await act(BOB, 'approve', approve!.data!);
    expect(done.type).toBe('application/vnd.microsoft.card.adaptive');
    within(done.value);
    expect(JSON.stringify(done.value)).toContain(`approved: ${id}`);
    await waitFor('active', async () => (await h.get(id!))?.status === 'active' || null);

    // Alice's home card follows: the open grant with its connection line, Extend and Close.
    const aliceUpdate = await waitFor('alice home shows the grant', async () =>
      bf.updates().filter((c) => c.activityId === aliceHome.activityId).map(cardOf).find((c) => JSON.stringify(c).includes('My open access** (1)') && JSON.stringify(c).includes('mstsc')),
    );
    within(aliceUpdate);
    // Extend from the home card: within the policy's steps; vm1's policy has approvers decide, so
    // the extension waits on Bob's home card with its own Approve extension button.
    const extendBtn = executes(aliceUpdate).find((a) => a.verb === 'extend' && a.data?.requestId === id);
    expect(extendBtn?.data?.addMs).toEqual(expect.any(Number));
    const extended = await act(ALICE, 'extend', extendBtn!.data!);
    within(extended.value);
    await waitFor('extension pending', async () => (await h.get(id!))?.pendingExtension ?? null);
    await waitFor('bob home shows the extension', async () =>
      bf.updates().filter((c) => c.activityId === bobHome.activityId).map(cardOf).find((c) => executes(c).some((a) => a.verb === 'ext_approve' && a.data?.requestId === id)),
    );
    // The Teams client's own refresh (the card's refresh action) and "Request access" on the home card.
    const refreshed = await act(ALICE, 'jitHome', { home: true });
    expect(JSON.stringify(refreshed.value)).toMatch(/My open access\*\* \(1\)/);
    const sent = bf.to(personalConversation(ALICE).id).length;
    const opened = await act(ALICE, 'jitForm', { home: true });
    expect(JSON.stringify(opened.value)).toContain('My open access');
    const formMsg = await waitFor('the form as a new message', async () => bf.to(personalConversation(ALICE).id)[sent]);
    expect(byId(cardOf(formMsg), 'target')).toMatchObject({ type: 'Input.ChoiceSet' });
    const closeBtn = executes(aliceUpdate).find((a) => a.verb === 'revoke' && a.data?.requestId === id);
    expect(closeBtn).toBeDefined();
    // Closing from the home card: the same revoke as the connection card's button.
    const closed = await act(ALICE, 'revoke', closeBtn!.data!);
    expect(JSON.stringify(closed.value)).toMatch(/My open access\*\* \(0\)/);
    await waitFor('revoked', async () => (await h.get(id!))?.status === 'revoked' || null);
    expect(bf.refused).toEqual([]);
  });

  it('a later start from the date and time inputs, in the Teams user\'s time zone; Withdraw on the home card cancels it', async () => {
    const date = new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 10);
    const activity = { ...actionActivity(bf.url, ALICE, 'jitRequest', { form: 'request', target: 'vm1', access: 'rdp', duration: '3600000', source: '203.0.113.9', startDate: date, startTime: '10:00' }, personalConversation(ALICE)), localTimezone: 'Asia/Tokyo' };
    const res = (await postActivity(h.app.url, activity)) as { status: number; body: { value: unknown } };
    expect(res.status).toBe(200);
    const id = /Request (r[0-9a-z]{9})/.exec(JSON.stringify(res.body.value))?.[1];
    expect(id).toBeDefined();
    expect((await h.get(id!))?.startAt).toBe(Date.parse(`${date}T10:00:00+09:00`));
    const home = await act(ALICE, 'jitHome', { home: true });
    const withdraw = executes(home.value).find((a) => a.verb === 'revoke' && a.data?.requestId === id && a.title === 'Withdraw');
    expect(withdraw).toBeDefined();
    await act(ALICE, 'revoke', withdraw!.data!);
    await waitFor('withdrawn', async () => (await h.get(id!))?.status === 'cancelled' || null);
  });

  it('a request that needs two approvals: the first, from the home card, says more are needed', async () => {
    const ok = await act(ALICE, 'jitRequest', { form: 'request', target: 'quorum2', access: 'ssh', duration: '3600000', source: '203.0.113.10' });
    const id = /Request (r[0-9a-z]{9})/.exec(JSON.stringify(ok.value))![1]!;
    const first = await act(BOB, 'approve', { requestId: id, home: true });
    expect(JSON.stringify(first.value)).toContain(`Your approval of ${id} is recorded; it needs more approvals`);
    expect((await h.get(id))?.status).toBe('pending');
    // A second click by the same approver is refused on the home card, as on the approval card.
    const again = await act(BOB, 'approve', { requestId: id, home: true });
    expect(JSON.stringify(again.value)).toMatch(/✗/);
    await h.app.service.revoke(p('alice@contoso.com'), id);
  });

  it('a submission delivered twice (the same activity) creates one request and answers the same card', async () => {
    const before = await mine(p('alice@contoso.com'));
    const activity = actionActivity(bf.url, ALICE, 'jitRequest', { form: 'request', target: 'vm1', access: 'ssh', duration: '1800000', source: '203.0.113.11' }, personalConversation(ALICE));
    const first = (await postActivity(h.app.url, activity)) as { body: { value: unknown } };
    const second = (await postActivity(h.app.url, activity)) as { body: { value: unknown } };
    expect(JSON.stringify(first.body.value)).toMatch(/waiting for approval/);
    expect(second.body.value).toEqual(first.body.value);
    expect(await mine(p('alice@contoso.com'))).toBe(before + 1);
    const id = /Request (r[0-9a-z]{9})/.exec(JSON.stringify(first.body.value))![1]!;
    await h.app.service.revoke(p('alice@contoso.com'), id);
  });

  it('`jit home` in a channel does not show one person\'s requests there: it points to the personal chat', async () => {
    const channel = channelConversation('19:general@thread.tacv2');
    const before = bf.to(channel.id).length;
    expect((await postActivity(h.app.url, messageActivity(bf.url, ALICE, 'home', channel))).status).toBe(200);
    const answer = await waitFor('answer in the channel', async () => bf.to(channel.id)[before]);
    expect(JSON.stringify(cardOf(answer))).toMatch(/Your home card is personal/);
    expect(JSON.stringify(cardOf(answer))).not.toMatch(/My open access|My pending requests/);
  });

  it('someone who may request nothing gets a clear message, not an empty form', async () => {
    const { card } = await reply(ERIN, 'jit');
    within(card);
    expect(JSON.stringify(card)).toMatch(/Nothing you can request/);
    expect(JSON.stringify(card)).toMatch(/JIT Requester role/);
    expect(elements(card).some((e) => String(e.type).startsWith('Input.'))).toBe(false);
    // And a forged submission is refused beside the target, nothing created.
    const forged = await act(ERIN, 'jitRequest', { target: 'vm1', access: 'rdp', duration: '3600000', source: '203.0.113.7' });
    expect(JSON.stringify(forged.value)).toMatch(/Nothing you can request|JIT Requester/);
    expect(await mine(p('erin@contoso.com'))).toBe(0);
  });
});
