// Slack, end to end: real signed HTTP requests to the running server, Web API calls answered by a
// local fake Slack (SLACK_API_URL), the real Redis, BullMQ and the simulated gate.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/env.js';
import type { AccessRequest } from '../../src/core/types.js';
import { TEST_POLICY_YAML, withWorkflowTargets } from '../fixtures/book.js';
import { FakeSlack, buttonBody, denySubmissionBody, sendSigned, slashBody, type SlackCall } from '../fakes/slack.js';
import { startHarness, waitFor, type Harness } from './harness.js';
import { p } from '../fixtures/ids.js';

const SECRET = 'test-signing-secret-8f3a9c';
const POLICY = withWorkflowTargets(TEST_POLICY_YAML).replace(
  'approval: { required: true, approvers: [group:oncall], quorum: 1, timeout: PT1H }',
  `approval: { required: true, approvers: [group:oncall], quorum: 1, timeout: PT1H }
    channels: { slack: { approvals: C0APPROVALS, audit: C0AUDIT } }`,
);

const ALICE = 'U024ALICE'; // mapped in the policy file
const BOB = 'U024BOB'; // mapped in the policy file
const CAROL = 'U024CAROL'; // resolved by users.info email
const MALLORY = 'U0MALLORY'; // resolves, but holds no role
const NOBODY = 'U0NOEMAIL'; // a Slack user without an email

let slack: FakeSlack;
let h: Harness;
let n = 0;

const blocksText = (c: SlackCall) => JSON.stringify(c.body.blocks ?? []);
const actionIds = (c: SlackCall): string[] =>
  ((c.body.blocks as Array<{ type: string; elements?: Array<{ action_id?: string }> }> | undefined) ?? [])
    .filter((b) => b.type === 'actions')
    .flatMap((b) => (b.elements ?? []).map((e) => e.action_id ?? ''));

async function slash(user: string, text: string, extra: Record<string, string> = {}) {
  const id = `cmd${++n}`;
  const body = slashBody(user, text, slack.responseUrl(id), extra);
  const res = await sendSigned(h.app.url, body, { secret: SECRET });
  return { res, id, body, reply: () => waitFor(`reply to "${text}"`, async () => slack.responses.find((r) => r.path === `/respond/${id}`)) };
}

async function click(user: string, action_id: string, value: string, message: { channel: string; ts: string }, triggerId?: string) {
  const id = `click${++n}`;
  const body = buttonBody(user, { action_id, value }, message, slack.responseUrl(id), triggerId);
  const res = await sendSigned(h.app.url, body, { secret: SECRET });
  return { res, id, body, reply: () => waitFor(`reply to ${action_id}`, async () => slack.responses.find((r) => r.path === `/respond/${id}`)) };
}

const replyText = (r: { body: Record<string, unknown> }) => String(r.body.text);

async function requestVia(user: string, text: string): Promise<{ id: string; card: SlackCall }> {
  const before = slack.of('chat.postMessage').length;
  const { reply } = await slash(user, text);
  const r = await reply();
  const id = /Request (r[0-9a-z]{9})/.exec(replyText(r))?.[1];
  if (!id) throw new Error(`no request id in ${replyText(r)}`);
  const card = await waitFor('approval card', async () => slack.of('chat.postMessage').slice(before).find((c) => c.body.channel === 'C0APPROVALS' && blocksText(c).includes(id)));
  return { id, card };
}

const ts = (c: SlackCall) => ({ channel: String(c.response?.channel), ts: String(c.response?.ts) });

const updatesOf = (id: string) => slack.of('chat.update').filter((c) => blocksText(c).includes(id));
const dmsTo = (user: string) => slack.of('chat.postMessage').filter((c) => c.body.channel === user);
const state = async (id: string): Promise<AccessRequest> => (await h.get(id))!;

beforeAll(async () => {
  slack = await new FakeSlack({
    [ALICE]: { email: 'alice@contoso.com' },
    [BOB]: { email: 'bob@contoso.com' },
    [CAROL]: { email: 'carol@contoso.com', tz: 'America/New_York' },
    [MALLORY]: { email: 'mallory@contoso.com' },
    [NOBODY]: {},
    U0ERIN: { email: 'erin@contoso.com' },
  }).start();
  const dir = mkdtempSync(join(tmpdir(), 'jit-slack-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  h = await startHarness({
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_BOT_TOKEN: 'xoxb-test-token',
    SLACK_API_URL: slack.apiUrl,
    SLACK_AUDIT_INTERVAL: '1s',
    JIT_POLICY_FILE: join(dir, 'policy.yaml'),
  });
});

afterAll(async () => {
  await h?.close();
  await slack?.close();
});

describe('Slack configuration', () => {
  it('is off without secrets and a half-set configuration names the missing variable', () => {
    expect(loadConfig({}).SLACK_BOT_TOKEN).toBeUndefined();
    expect(() => loadConfig({ SLACK_SIGNING_SECRET: SECRET })).toThrow(/SLACK_BOT_TOKEN: missing/);
    expect(() => loadConfig({ SLACK_BOT_TOKEN: 'xoxb-1' })).toThrow(/SLACK_SIGNING_SECRET: missing/);
    expect(() => loadConfig({ SLACK_SIGNING_SECRET: SECRET, SLACK_BOT_TOKEN: 'not-a-token' })).toThrow(/SLACK_BOT_TOKEN/);
  });

  it('checks the token with auth.test at start, with the bot token', () => {
    const auth = slack.of('auth.test');
    expect(auth.length).toBeGreaterThan(0);
    expect(auth.at(-1)!.token).toBe('xoxb-test-token');
  });
});

describe('signature checks', () => {
  it('refuses a forged signature, an old timestamp and a missing header with 401 and changes nothing', async () => {
    await h.app.homesSettled();
    const before = { calls: slack.calls.length, responses: slack.responses.length, requests: (await h.app.service.list(p('dave@contoso.com'), 'all')) };
    const body = slashBody(ALICE, 'rdp vm1 2h from 203.0.113.7', slack.responseUrl('forged'));
    const forged = await sendSigned(h.app.url, body, { secret: 'not-the-secret' });
    const old = await sendSigned(h.app.url, body, { secret: SECRET, timestamp: Math.floor(Date.now() / 1000) - 6 * 60 });
    const missing = await sendSigned(h.app.url, body, { secret: SECRET, signature: null });
    // A valid signature over a different body (tampered in transit).
    const tampered = await fetch(`${h.app.url}/slack/events`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': String(Math.floor(Date.now() / 1000)),
        'x-slack-signature': (await import('../fakes/slack.js')).slackSignature(SECRET, Math.floor(Date.now() / 1000), body),
      },
      body: body.replace('vm1', 'db1'),
    });
    expect([forged.status, old.status, missing.status, tampered.status]).toEqual([401, 401, 401, 401]);
    await new Promise((r) => setTimeout(r, 300));
    expect(slack.responses.length).toBe(before.responses);
    expect(slack.calls.length).toBe(before.calls);
    const after = await h.app.service.list(p('dave@contoso.com'), 'all');
    expect(after).toEqual(before.requests);
  });

  it('answers only POST on /slack/events', async () => {
    const res = await fetch(`${h.app.url}/slack/events`);
    expect(res.status).toBe(405);
  });
});

describe('/jit end to end', () => {
  it('request → approval card → Approve → DM with connection details → expiry → closed, audit channel in order', async () => {
    const { res, reply } = await slash(ALICE, 'rdp vm1 4s from 203.0.113.7 reason "INC-1 <!channel>"');
    expect(res.status).toBe(200);
    expect(res.ms).toBeLessThan(3000);
    expect(res.text).toBe('');
    const r = await reply();
    expect(r.body.response_type).toBe('ephemeral');
    expect(replyText(r)).toMatch(/waiting for approval/);
    expect(replyText(r)).toMatch(/bob@contoso\.com/);
    const id = /Request (r[0-9a-z]{9})/.exec(replyText(r))![1]!;

    const card = await waitFor('approval card', async () => slack.of('chat.postMessage').find((c) => c.body.channel === 'C0APPROVALS' && blocksText(c).includes(id)));
    expect(actionIds(card)).toEqual(['jit_approve', 'jit_deny']);
    const text = blocksText(card);
    for (const part of ['alice@contoso.com', 'vm1', '3389/tcp', '203.0.113.7/32', '4s', 'Approval offer expires']) expect(text).toContain(part);
    // The justification is shown, escaped: no channel-wide ping.
    expect(text).toContain('&lt;!channel&gt;');
    expect(text).not.toContain('<!channel>');

    const approve = await click(BOB, 'jit_approve', id, ts(card));
    expect(approve.res.status).toBe(200);
    expect(replyText(await approve.reply())).toMatch(/approved/i);

    const updated = await waitFor('card updated', async () => updatesOf(id).find((u) => !actionIds(u).length && blocksText(u).includes('Approved by bob@contoso.com')));
    expect(updated.body.channel).toBe('C0APPROVALS');
    expect(updated.body.ts).toBe(ts(card).ts);
    const dm = await waitFor('connection DM', async () => dmsTo(ALICE).find((c) => blocksText(c).includes('mstsc /v:vm1.contoso.example:3389')));
    expect(actionIds(dm)).toEqual(['jit_revoke']);
    expect((await h.rules()).filter((x) => x.requestId === id)).toHaveLength(1);

    await waitFor('rule removed at expiry', async () => (await h.rules()).every((x) => x.requestId !== id), 15_000);
    await waitFor('closed DM', async () => dmsTo(ALICE).find((c) => String(c.body.text).includes('expired') && String(c.body.text).includes(id)));
    expect((await state(id)).status).toBe('expired');

    // The audit channel has every step, in the audit log's order.
    const log = (await h.audit(id)).map((e) => e.action);
    const channelActions = await waitFor('audit channel complete', async () => {
      const lines = slack
        .of('chat.postMessage')
        .filter((c) => c.body.channel === 'C0AUDIT')
        .flatMap((c) => String(c.body.text).split('\n'))
        .filter((l) => l.includes(id));
      const actions = lines.map((l) => /\*([a-z_.]+)\*/.exec(l)?.[1]);
      return actions.length >= log.length ? actions : null;
    }, 10_000);
    expect(channelActions).toEqual(log);
    expect(log).toEqual(expect.arrayContaining(['request.created', 'request.approved', 'rule.applied', 'grant.activated', 'grant.expired', 'rule.removed']));
  });

  it('/jit help lists examples from the caller\'s own targets', async () => {
    const alice = await (await slash(ALICE, 'help')).reply();
    expect(blocksTextOf(alice)).toMatch(/\/jit (rdp|ssh) (vm1|db1|dev1)/);
    const mallory = await (await slash(MALLORY, 'help')).reply();
    expect(blocksTextOf(mallory)).toContain('you cannot request any target yet');
  });

  it('a bad command gets the parser\'s helpful rejection and creates nothing', async () => {
    const before = (await h.app.service.list(p('dave@contoso.com'), 'all'));
    for (const [text, expected] of [
      ['rdp vm1 99h from 203.0.113.7', /at most 3h/],
      ['rdp vm9 2h from 203.0.113.7', /vm9/],
      ['rdp vm1 2h from 203.0.113.999', /203\.0\.113\.999/],
    ] as const) {
      const r = await (await slash(ALICE, text)).reply();
      expect(replyText(r)).toMatch(/^✗/);
      expect(replyText(r)).toMatch(expected);
    }
    expect(await h.app.service.list(p('dave@contoso.com'), 'all')).toEqual(before);
  });

  it('a Slack user without an email or mapping gets told how to fix it', async () => {
    const r = await (await slash(NOBODY, 'rdp vm1 1h from 203.0.113.7')).reply();
    expect(replyText(r)).toMatch(/U0NOEMAIL/);
    expect(replyText(r)).toMatch(/principals/);
  });

  it('a retried slash command (X-Slack-Retry-Num) creates one request', async () => {
    const id = `retry${++n}`;
    const body = slashBody(ALICE, 'ssh db1 30m', slack.responseUrl(id));
    const first = await sendSigned(h.app.url, body, { secret: SECRET });
    const retry = await sendSigned(h.app.url, body, { secret: SECRET, retryNum: 1 });
    expect([first.status, retry.status]).toEqual([200, 200]);
    await waitFor('reply', async () => slack.responses.find((r) => r.path === `/respond/${id}`));
    await new Promise((r) => setTimeout(r, 300));
    expect(slack.responses.filter((r) => r.path === `/respond/${id}`)).toHaveLength(1);
    const mine = await h.app.service.list(p('alice@contoso.com'), 'mine');
    expect(mine.kind === 'list' && mine.requests.filter((q) => q.target === 'db1').length).toBe(1);
  });
});

function blocksTextOf(r: { body: Record<string, unknown> }): string {
  return JSON.stringify(r.body.blocks ?? []) + String(r.body.text);
}

describe('who may click', () => {
  it('refuses a non-approver, the requester, a replayed click and a payload naming someone else, each changing nothing', async () => {
    const { id, card } = await requestVia(ALICE, 'rdp vm1 1h from 203.0.113.7');
    const updatesBefore = updatesOf(id).length;

    const mallory = await click(MALLORY, 'jit_approve', id, ts(card));
    // mallory (no role) may not see the request: told it does not exist (no target, no approvers).
    expect(replyText(await mallory.reply())).toMatch(/there is no request r[0-9a-z]{9} that you can see/);

    // Bob is an approver, but not of his own request.
    const own = await requestVia(BOB, 'rdp vm1 1h from 203.0.113.8');
    const self = await click(BOB, 'jit_approve', own.id, ts(own.card));
    expect(replyText(await self.reply())).toMatch(/cannot approve your own request/);
    expect((await state(own.id)).status).toBe('pending');
    await h.app.service.revoke(p('bob@contoso.com'), own.id);

    // The button value carries only the request id; a crafted value naming an approver is refused.
    const crafted = await click(MALLORY, 'jit_approve', JSON.stringify({ requestId: id, user: BOB }), ts(card));
    expect(replyText(await crafted.reply())).toMatch(/does not name a request/);

    // Bob's click, captured and replayed with its valid signature: handled once.
    const bobClick = await click(BOB, 'jit_approve', id, ts(card));
    await bobClick.reply();
    const replay = await sendSigned(h.app.url, bobClick.body, { secret: SECRET });
    expect(replay.status).toBe(200);
    await waitFor('replay answer', async () => slack.responses.filter((r) => r.path === `/respond/${bobClick.id}`).length >= 2 || null);
    const answers = slack.responses.filter((r) => r.path === `/respond/${bobClick.id}`).map(replyText);
    expect(answers[1]).toMatch(/already handled/);

    const req = await state(id);
    expect(req.decisions.map((d) => d.by)).toEqual(['bob@contoso.com']);
    expect(req.status).toBe('active');
    // Only Bob's decision updated the card; the refused clicks did not.
    await waitFor('card updated once approved', async () => updatesOf(id).length > updatesBefore || null);
    await h.app.service.revoke(p('alice@contoso.com'), id);
  });

  it('a double click by an approver records one decision', async () => {
    const { id, card } = await requestVia(ALICE, 'ssh quorum2 1h from 203.0.113.7');
    const [a, b] = await Promise.all([click(BOB, 'jit_approve', id, ts(card)), click(BOB, 'jit_approve', id, ts(card))]);
    const texts = [replyText(await a.reply()), replyText(await b.reply())];
    expect(texts.some((t) => /already approved/.test(t))).toBe(true);
    const req = await state(id);
    expect(req.decisions).toHaveLength(1);
    expect(req.status).toBe('pending');
    // Quorum 2 shows the count so far.
    await waitFor('count on card', async () => updatesOf(id).find((u) => blocksText(u).includes('Approvals: 1 of 2')));
    expect(actionIds(updatesOf(id).at(-1)!)).toEqual(['jit_approve', 'jit_deny']);
    const carol = await click(CAROL, 'jit_approve', id, ts(card));
    await carol.reply();
    await waitFor('approved card', async () => updatesOf(id).find((u) => !actionIds(u).length && blocksText(u).includes('Approved by carol@contoso.com')));
    await h.app.service.revoke(p('alice@contoso.com'), id);
  });
});

describe('deny with a reason, timeouts, revoke and extend buttons', () => {
  it('Deny opens a modal; submitting it denies with the reason, updates the card and DMs the requester', async () => {
    const { id, card } = await requestVia(ALICE, 'rdp vm1 1h from 203.0.113.7');
    const deny = await click(CAROL, 'jit_deny', id, ts(card));
    expect(deny.res.status).toBe(200);
    const open = await waitFor('views.open', async () => slack.of('views.open').find((c) => JSON.stringify(c.body.view).includes(id)));
    const view = open.body.view as { callback_id: string; private_metadata: string };
    expect(view.callback_id).toBe('jit_deny_modal');
    expect(open.body.trigger_id).toBeTruthy();
    expect((await state(id)).status).toBe('pending');

    const submit = await sendSigned(h.app.url, denySubmissionBody(CAROL, view, 'not in a change window'), { secret: SECRET });
    expect(submit.status).toBe(200);
    expect(submit.text).toBe('');
    const req = await waitFor('denied', async () => ((await state(id)).status === 'denied' ? state(id) : null));
    expect(req.statusReason).toBe('not in a change window');
    await waitFor('card shows the denial', async () => updatesOf(id).find((u) => !actionIds(u).length && blocksText(u).includes('Denied by carol@contoso.com')));
    await waitFor('requester told', async () => dmsTo(ALICE).find((c) => String(c.body.text).includes('denied by carol@contoso.com') && String(c.body.text).includes('not in a change window')));
  });

  it('Deny from a non-approver is refused before any modal opens; a forged modal submission is refused in the modal', async () => {
    const { id, card } = await requestVia(ALICE, 'rdp vm1 1h from 203.0.113.7');
    const opens = slack.of('views.open').length;
    const deny = await click(MALLORY, 'jit_deny', id, ts(card));
    expect(replyText(await deny.reply())).toMatch(/there is no request r[0-9a-z]{9} that you can see/);
    expect(slack.of('views.open').length).toBe(opens);
    const forged = await sendSigned(h.app.url, denySubmissionBody(MALLORY, { callback_id: 'jit_deny_modal', private_metadata: JSON.stringify({ requestId: id, scope: 'request' }) }, 'x'), { secret: SECRET });
    expect(forged.status).toBe(200);
    const answer = JSON.parse(forged.text) as { response_action: string; errors: { reason: string } };
    expect(answer.response_action).toBe('errors');
    expect(answer.errors.reason).toMatch(/there is no request r[0-9a-z]{9} that you can see/);
    expect((await state(id)).status).toBe('pending');
    await h.app.service.revoke(p('alice@contoso.com'), id);
  });

  it('a request nobody decides times out: the card and the requester say so', async () => {
    const { id } = await requestVia(ALICE, 'ssh quick1 1h from 203.0.113.7');
    await waitFor('timed-out card', async () => updatesOf(id).find((u) => !actionIds(u).length && blocksText(u).includes('timed out')), 10_000);
    await waitFor('requester told', async () => dmsTo(ALICE).find((c) => String(c.body.text).includes('in time') && String(c.body.text).includes(id)));
  });

  it('the Close button in the connection DM revokes the grant', async () => {
    const { id, card } = await requestVia(ALICE, 'rdp vm1 1h from 203.0.113.7');
    await (await click(BOB, 'jit_approve', id, ts(card))).reply();
    const dm = await waitFor('connection DM', async () => dmsTo(ALICE).find((c) => actionIds(c).includes('jit_revoke') && blocksText(c).includes(id)));
    expect((await h.rules()).some((x) => x.requestId === id)).toBe(true);
    const mallory = await click(MALLORY, 'jit_revoke', id, { channel: 'D024ALICE', ts: '1.1' });
    expect(replyText(await mallory.reply())).toMatch(/there is no request r[0-9a-z]{9} that you can see/);
    expect((await h.rules()).some((x) => x.requestId === id)).toBe(true);
    const revoke = await click(ALICE, 'jit_revoke', id, ts(dm));
    expect(replyText(await revoke.reply())).toMatch(/revoked/);
    expect((await h.rules()).some((x) => x.requestId === id)).toBe(false);
    await waitFor('closed DM', async () => dmsTo(ALICE).find((c) => String(c.body.text).includes('closed by alice@contoso.com') && String(c.body.text).includes(id)));
  });

  it('the expiry reminder offers Extend; the extension goes to approvers, who approve it; a late click opens nothing', async () => {
    const { id, card } = await requestVia(ALICE, 'ssh rem1 5s from 203.0.113.7');
    await (await click(BOB, 'jit_approve', id, ts(card))).reply();
    const reminder = await waitFor('reminder DM', async () => dmsTo(ALICE).find((c) => actionIds(c).some((a) => a.startsWith('jit_extend_')) && blocksText(c).includes(id)), 10_000);
    const button = (reminder.body.blocks as Array<{ type: string; elements?: Array<{ action_id: string; value: string }> }>).find((b) => b.type === 'actions')!.elements![0]!;
    expect(button.value).toBe(`${id}:20000`);
    const before = await state(id);
    const extend = await click(ALICE, button.action_id, button.value, { channel: 'D024ALICE', ts: '1.2' });
    expect(replyText(await extend.reply())).toMatch(/waiting for approval/);
    const extCard = await waitFor('extension card', async () => slack.of('chat.postMessage').find((c) => c.body.channel === 'C0APPROVALS' && actionIds(c).includes('jit_ext_approve') && blocksText(c).includes(id)));
    // The old request card's Approve cannot approve the extension.
    const stale = await click(CAROL, 'jit_approve', id, ts(card));
    expect(replyText(await stale.reply())).toMatch(/decision is over/);
    const ok = await click(CAROL, 'jit_ext_approve', id, ts(extCard));
    expect(replyText(await ok.reply())).toMatch(/extended/);
    const req = await state(id);
    expect(req.expiresAt).toBe(before.expiresAt! + 20_000);
    expect(await h.app.scheduler.expiryDueAt(id)).toBe(req.expiresAt);
    await waitFor('extension card updated', async () => slack.of('chat.update').find((u) => u.body.ts === ts(extCard).ts && blocksText(u).includes('Extension approved')));
    await h.app.service.revoke(p('alice@contoso.com'), id);
    const late = await click(ALICE, button.action_id, button.value, { channel: 'D024ALICE', ts: '1.2' });
    expect(replyText(await late.reply())).toMatch(/only an active grant can be extended/);
    expect((await h.rules()).some((x) => x.requestId === id)).toBe(false);
  });
});

describe('workflow in Slack', () => {
  it('a request nobody decides escalates: the card says so and the escalation approver gets a card by DM and may decide', async () => {
    const { id, card } = await requestVia(ALICE, 'ssh esc1 1h from 203.0.113.7');
    await waitFor('escalated card', async () => updatesOf(id).find((u) => u.body.ts === ts(card).ts && blocksText(u).includes('Escalated') && blocksText(u).includes('erin@contoso.com')), 10_000);
    const dm = await waitFor('card to erin', async () => dmsTo('U0ERIN').find((c) => actionIds(c).includes('jit_approve') && blocksText(c).includes(id)));
    const ok = await click('U0ERIN', 'jit_approve', id, ts(dm));
    expect(replyText(await ok.reply())).toMatch(/approved/);
    // Both copies (channel and Erin's DM) now show the decision without buttons.
    await waitFor('both copies updated', async () => {
      const done = updatesOf(id).filter((u) => !actionIds(u).length && blocksText(u).includes('Approved by erin@contoso.com'));
      return new Set(done.map((u) => u.body.channel)).size >= 2 || null;
    });
    await h.app.service.revoke(p('alice@contoso.com'), id);
  });

  it('`at 23:59` is read in the time zone of the requester\'s Slack profile', async () => {
    const { id, card } = await requestVia(ALICE, 'rdp vm1 1h from 203.0.113.7 at 23:59');
    const req = await state(id);
    const local = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Amsterdam', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(req.startAt!));
    expect(local).toBe('23:59');
    expect(req.startAt! - Date.now()).toBeLessThanOrEqual(86_400_000);
    expect(blocksText(card)).toContain(`<!date^${Math.floor(req.startAt! / 1000)}^`);
    await h.app.service.revoke(p('alice@contoso.com'), id);
  });
});

describe('audit channel under rate limits', () => {
  it('a 429 with Retry-After is waited out and nothing is dropped', async () => {
    slack.failNext('chat.postMessage', 429, { 'retry-after': '1' });
    const { id } = await requestVia(ALICE, 'rdp vm1 1h from 203.0.113.7');
    await h.app.service.revoke(p('alice@contoso.com'), id);
    const log = (await h.audit(id)).map((e) => e.action);
    const actions = await waitFor('all lines', async () => {
      const got = slack
        .of('chat.postMessage')
        .filter((c) => c.body.channel === 'C0AUDIT')
        .flatMap((c) => String(c.body.text).split('\n'))
        .filter((l) => l.includes(id))
        .map((l) => /\*([a-z_.]+)\*/.exec(l)?.[1]);
      return got.length >= log.length ? got : null;
    }, 15_000);
    expect(actions).toEqual(log);
    expect(slack.calls.some((c) => c.method === 'chat.postMessage!429')).toBe(true);
  });
});

describe('Block Kit limits and cards Slack refuses', () => {
  const toApprovals = (b: Record<string, unknown>) => b.channel === 'C0APPROVALS';
  const fallbacks = async (id: string) => (await h.audit(id)).filter((e) => e.action === 'notify.card_fallback');

  it('a justification of 500 `&` and `<` (2,500 characters once escaped) still gets a card approvers see, its field cut after escaping', async () => {
    const { id, card } = await requestVia(ALICE, `rdp vm1 1h from 203.0.113.7 reason "${'&<'.repeat(250)}"`);
    expect(card.response?.ok).toBe(true);
    const fields = (card.body.blocks as Array<{ fields?: Array<{ text: string }> }>).flatMap((b) => b.fields ?? []);
    const justification = fields.find((f) => f.text.startsWith('*Justification*'))!.text;
    expect(justification.length).toBeLessThanOrEqual(2000);
    expect(justification).toMatch(/^\*Justification\*\n(&amp;&lt;)+(&amp;)?…$/);
    expect(await fallbacks(id)).toEqual([]);
    await h.app.service.revoke(p('alice@contoso.com'), id);
  });

  it('a card post failing for a transient reason (HTTP 500 through the client\'s own retries) is tried again and goes out as a card', async () => {
    for (let i = 0; i < 3; i++) slack.failNext('chat.postMessage', 500, {}, { ok: false, error: 'internal_error' }, toApprovals);
    const before = slack.calls.filter((c) => c.method === 'chat.postMessage!500').length;
    const { id, card } = await requestVia(ALICE, 'rdp vm1 1h from 203.0.113.7');
    expect(slack.calls.filter((c) => c.method === 'chat.postMessage!500').length - before).toBe(3);
    expect(actionIds(card)).toEqual(['jit_approve', 'jit_deny']);
    expect(await fallbacks(id)).toEqual([]);
    await h.app.service.revoke(p('alice@contoso.com'), id);
  });

  it('a card Slack refuses (invalid_blocks) is replaced by plain text saying how to decide, and the audit says so', async () => {
    slack.failNext('chat.postMessage', 200, {}, { ok: false, error: 'invalid_blocks', errors: ['must be less than 2001 characters [json-pointer:/blocks/1/fields/5/text]'] }, toApprovals);
    const before = slack.of('chat.postMessage').length;
    const { reply } = await slash(ALICE, 'rdp vm1 1h from 203.0.113.7');
    const id = /Request (r[0-9a-z]{9})/.exec(replyText(await reply()))![1]!;
    const stand = await waitFor('plain-text stand-in', async () => slack.of('chat.postMessage').slice(before).find((c) => toApprovals(c.body) && String(c.body.text).includes(id)));
    expect(stand.body.blocks).toBeUndefined();
    expect(String(stand.body.text)).toContain(`/jit approve ${id}`);
    expect(String(stand.body.text)).toContain('invalid_blocks');
    const [audit] = await waitFor('audited', async () => ((await fallbacks(id)).length ? fallbacks(id) : null));
    expect(audit!.details).toMatchObject({ platform: 'slack', card: 'request', destination: 'C0APPROVALS', error: 'invalid_blocks', delivered: 'text' });
    // The stand-in is a card copy: deciding updates it into the real (decided) card.
    const { reply: approved } = await slash(BOB, `approve ${id}`);
    expect(replyText(await approved())).toMatch(/approved/);
    await waitFor('stand-in updated', async () => slack.of('chat.update').find((c) => c.body.ts === stand.response?.ts && blocksText(c).includes('Open until')));
    await h.app.service.revoke(p('alice@contoso.com'), id);
  });

  it('when the approvals channel itself fails (channel_not_found), the approvers get the request by DM, and the audit says so', async () => {
    slack.failNext('chat.postMessage', 200, {}, { ok: false, error: 'channel_not_found' }, toApprovals);
    slack.failNext('chat.postMessage', 200, {}, { ok: false, error: 'channel_not_found' }, toApprovals);
    const { reply } = await slash(ALICE, 'rdp vm1 1h from 203.0.113.7');
    const id = /Request (r[0-9a-z]{9})/.exec(replyText(await reply()))![1]!;
    const [audit] = await waitFor('audited', async () => ((await fallbacks(id)).length ? fallbacks(id) : null));
    expect(audit!.details).toMatchObject({ destination: 'C0APPROVALS', error: 'channel_not_found', delivered: 'approver_dms', approvers: 'bob@contoso.com carol@contoso.com' });
    for (const user of [BOB, CAROL]) {
      const dm = dmsTo(user).find((c) => String(c.body.text).includes(`/jit approve ${id}`));
      expect(dm, `DM to ${user}`).toBeDefined();
    }
    await h.app.service.revoke(p('alice@contoso.com'), id);
  });

  it('Slack refused no blocks the bot sent in this whole run (the fake checks Block Kit\'s limits)', () => {
    expect(slack.refused).toEqual([]);
  });
});

describe('the app manifest', () => {
  it('points both URLs at /slack/events and asks for exactly the scopes of the Web API methods the bot called', async () => {
    const { parse } = await import('yaml');
    const { readFileSync } = await import('node:fs');
    const m = parse(readFileSync('manifest/slack/manifest.yaml', 'utf8')) as {
      features: { slash_commands: Array<{ command: string; url: string }> };
      settings: { interactivity: { is_enabled: boolean; request_url: string } };
      oauth_config: { scopes: { bot: string[] } };
    };
    expect(m.features.slash_commands.map((c) => c.command)).toEqual(['/jit']);
    expect(new URL(m.features.slash_commands[0]!.url).pathname).toBe('/slack/events');
    expect(m.settings.interactivity.is_enabled).toBe(true);
    expect(new URL(m.settings.interactivity.request_url).pathname).toBe('/slack/events');
    // Scopes each method needs, from Slack's method reference.
    const needs: Record<string, string[]> = {
      'auth.test': [],
      'chat.postMessage': ['chat:write'],
      'chat.update': ['chat:write'],
      'views.open': [],
      'views.update': [],
      'views.publish': [],
      'users.info': ['users:read', 'users:read.email'],
      'users.lookupByEmail': ['users:read.email'],
    };
    const called = [...new Set(slack.calls.map((c) => c.method.split('!')[0]!))];
    for (const method of called) expect(Object.keys(needs), `unexpected Web API method ${method}`).toContain(method);
    const used = new Set(['commands', ...called.flatMap((c) => needs[c] ?? [])]);
    expect([...m.oauth_config.scopes.bot].sort()).toEqual([...used].sort());
  });
});
