// Issue 17 item 9, Slack identity: (1) a principal mapped explicitly to a Slack user id is that
// user only: another Slack user whose profile email is the principal's cannot act as it; (2) every
// request (slash command, button, modal) must come from the workspace the bot is installed in
// (auth.test's team_id / enterprise_id), else it is refused before anything is read or changed.
// Real requests signed as Slack signs them (v0 HMAC), to the running server.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foreignWorkspace } from '../../src/adapters/slack/adapter.js';
import { TEST_POLICY_YAML } from '../fixtures/book.js';
import { FakeSlack, buttonBody, denySubmissionBody, sendSigned, slackSignature, slashBody, type SlackCall } from '../fakes/slack.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { startHarness, waitFor, type Harness } from '../integration/harness.js';
import { p } from '../fixtures/ids.js';

const SECRET = 'test-signing-secret-5e1d7b';
const ALICE = 'U024ALICE'; // mapped in the policy file
const BOB = 'U024BOB'; // mapped in the policy file; an approver (group oncall)
const EVIL_BOB = 'U0EVILBOB'; // not mapped; profile email Bob@Contoso.com
const OTHER_TEAM = 'T0OTHER';
const POLICY = TEST_POLICY_YAML.replace(
  'approval: { required: true, approvers: [group:oncall], quorum: 1, timeout: PT1H }',
  `approval: { required: true, approvers: [group:oncall], quorum: 1, timeout: PT1H }
    channels: { slack: { approvals: C0APPROVALS } }`,
);

const warnings: Array<{ msg: string; fields?: Record<string, unknown> }> = [];
const log: Logger = { ...silentLogger, warn: (msg, fields) => void warnings.push({ msg, ...(fields ? { fields } : {}) }) };

let slack: FakeSlack;
let h: Harness;
let n = 0;

beforeAll(async () => {
  slack = await new FakeSlack({ [ALICE]: { email: 'alice@contoso.com' }, [BOB]: { email: 'bob@contoso.com' }, [EVIL_BOB]: { email: 'Bob@Contoso.com' } }).start();
  const dir = mkdtempSync(join(tmpdir(), 'jit-slack-sec-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  h = await startHarness({ SLACK_SIGNING_SECRET: SECRET, SLACK_BOT_TOKEN: 'xoxb-test-token', SLACK_API_URL: slack.apiUrl, JIT_POLICY_FILE: join(dir, 'policy.yaml') }, { log });
});

afterAll(async () => {
  await h?.close();
  await slack?.close();
});

/** Rewrites the JSON `payload` field of an interactivity body. */
function withPayload(body: string, edit: (p: Record<string, unknown>) => void): string {
  const p = JSON.parse(new URLSearchParams(body).get('payload')!) as Record<string, unknown>;
  edit(p);
  return new URLSearchParams({ payload: JSON.stringify(p) }).toString();
}

async function post(body: string, id: string) {
  const res = await sendSigned(h.app.url, body, { secret: SECRET });
  return { res, reply: () => waitFor(`reply ${id}`, async () => slack.responses.find((r) => r.path === `/respond/${id}`)) };
}

const slash = (user: string, text: string, extra: Record<string, string> = {}) => {
  const id = `cmd${++n}`;
  return post(slashBody(user, text, slack.responseUrl(id), extra), id);
};

const click = (user: string, action_id: string, value: string, card: SlackCall, edit: (p: Record<string, unknown>) => void = () => {}) => {
  const id = `click${++n}`;
  const message = { channel: String(card.response?.channel), ts: String(card.response?.ts) };
  return post(withPayload(buttonBody(user, { action_id, value }, message, slack.responseUrl(id)), edit), id);
};

async function pending(): Promise<{ id: string; card: SlackCall }> {
  const before = slack.of('chat.postMessage').length;
  const r = await (await slash(ALICE, 'rdp vm1 1h from 203.0.113.7')).reply();
  const id = /Request (r[0-9a-z]{9})/.exec(String(r.body.text))![1]!;
  const card = await waitFor('approval card', async () => slack.of('chat.postMessage').slice(before).find((c) => c.body.channel === 'C0APPROVALS' && JSON.stringify(c.body.blocks).includes(id)));
  return { id, card };
}

const status = async (id: string) => (await h.get(id))?.status;
const requests = async () => {
  const r = await h.app.service.list(p('dave@contoso.com'), 'all');
  return r.kind === 'list' ? r.requests.map((x) => `${x.id}:${x.status}`) : [];
};
const infoCalls = (user: string) => slack.of('users.info').filter((c) => c.body.user === user).length;

describe('an explicit Slack id pins the principal', () => {
  it('another Slack user whose profile email is an approver\'s cannot approve as them, nor read as them', async () => {
    const { id, card } = await pending();
    const approve = await click(EVIL_BOB, 'jit_approve', id, card);
    expect(approve.res.status).toBe(200);
    expect(String((await approve.reply()).body.text)).toMatch(/bob@contoso\.com is mapped to another Slack user under principals in the policy file/);
    const list = await (await slash(EVIL_BOB, 'list all')).reply();
    expect(String(list.body.text)).toMatch(/cannot act as bob@contoso\.com/);
    expect(String(list.body.text)).not.toContain(id);
    expect(await status(id)).toBe('pending');
    // The pinned user still approves (control).
    const real = await click(BOB, 'jit_approve', id, card);
    expect(String((await real.reply()).body.text)).toMatch(/approved/i);
    await waitFor('active', async () => (await status(id)) === 'active');
    await h.app.service.revoke(p('alice@contoso.com'), id);
  });
});

describe('requests from another workspace are refused', () => {
  it('a slash command from another team (even by a mapped user id) is refused in the ack; nothing read, nothing created', async () => {
    // Home tabs redrawn after the previous test's changes are not this request's doing.
    await h.app.homesSettled();
    const before = { requests: await requests(), info: infoCalls(ALICE), responses: slack.responses.length, calls: slack.calls.length };
    const { res } = await slash(ALICE, 'rdp vm1 1h from 203.0.113.7', { team_id: OTHER_TEAM, team_domain: 'other' });
    expect(res.status).toBe(200);
    const ack = JSON.parse(res.text) as { response_type: string; text: string };
    expect(ack.response_type).toBe('ephemeral');
    expect(ack.text).toMatch(/answers only the Slack workspace it is installed in; this request comes from workspace T0OTHER\. Nothing was read or changed/);
    // Same team, but an Enterprise Grid org the bot is not part of.
    const grid = await slash(ALICE, 'list all', { enterprise_id: 'E0OTHER', enterprise_name: 'Other' });
    expect(JSON.parse(grid.res.text)).toMatchObject({ text: expect.stringMatching(/Enterprise Grid org E0OTHER/) });
    await new Promise((r) => setTimeout(r, 200));
    expect(await requests()).toEqual(before.requests);
    expect(slack.responses.length).toBe(before.responses);
    expect(slack.calls.length).toBe(before.calls);
    // The refusals leave nothing behind: the next command from the installed workspace is answered.
    const home = await (await slash(ALICE, 'help')).reply();
    expect(String(home.body.text)).not.toMatch(/installed in/);
  });

  it('a button click from another team, or by a user of another team in a shared channel, is refused; the request stays pending', async () => {
    const { id, card } = await pending();
    const info = infoCalls(BOB);
    const foreignTeam = await click(BOB, 'jit_approve', id, card, (p) => {
      p.team = { id: OTHER_TEAM, domain: 'other' };
      (p.user as Record<string, unknown>).team_id = OTHER_TEAM;
    });
    expect(String((await foreignTeam.reply()).body.text)).toMatch(/comes from workspace T0OTHER/);
    // Slack Connect: the channel is ours, the clicking user belongs to another organisation.
    const external = await click(BOB, 'jit_approve', id, card, (p) => {
      (p.user as Record<string, unknown>).team_id = OTHER_TEAM;
    });
    expect(String((await external.reply()).body.text)).toMatch(/comes from workspace T0OTHER/);
    expect(await status(id)).toBe('pending');
    expect(infoCalls(BOB)).toBe(info);
    expect(slack.of('views.open').length).toBe(0);
    await h.app.service.revoke(p('alice@contoso.com'), id);
  });

  it('a Deny modal submitted from another team is refused in the modal; the request stays pending', async () => {
    const { id } = await pending();
    const body = withPayload(denySubmissionBody(BOB, { callback_id: 'jit_deny_modal', private_metadata: JSON.stringify({ requestId: id, scope: 'request' }) }, 'no'), (p) => {
      p.team = { id: OTHER_TEAM, domain: 'other' };
      (p.user as Record<string, unknown>).team_id = OTHER_TEAM;
      (p.view as Record<string, unknown>).team_id = OTHER_TEAM;
    });
    const res = await sendSigned(h.app.url, body, { secret: SECRET });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toMatchObject({ response_action: 'errors', errors: { reason: expect.stringMatching(/installed in/) } });
    expect(await status(id)).toBe('pending');
    await h.app.service.revoke(p('alice@contoso.com'), id);
  });
});

describe('events from another workspace', () => {
  it('an Events API callback from another team is acknowledged and dropped before any listener, with a warning', async () => {
    await h.app.homesSettled();
    const calls = slack.calls.length;
    const body = JSON.stringify({
      token: 'deprecated-verification-token',
      team_id: OTHER_TEAM,
      api_app_id: 'A0JITBOT',
      type: 'event_callback',
      event_id: 'Ev0OTHER1',
      event_time: Math.floor(Date.now() / 1000),
      event: { type: 'app_mention', user: BOB, text: '<@U0JITBOT> rdp vm1 1h', ts: '1767000000.000100', channel: 'C0GENERAL', event_ts: '1767000000.000100' },
      authorizations: [{ enterprise_id: null, team_id: OTHER_TEAM, user_id: 'U0JITBOT', is_bot: true, is_enterprise_install: false }],
    });
    const ts = Math.floor(Date.now() / 1000);
    const res = await fetch(`${h.app.url}/slack/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-slack-request-timestamp': String(ts), 'x-slack-signature': slackSignature(SECRET, ts, body) },
      body,
    });
    expect(res.status).toBe(200);
    const warning = await waitFor('refusal warning', async () => warnings.find((w) => w.msg === 'slack: request from another workspace refused' && w.fields?.from === `workspace ${OTHER_TEAM}`));
    expect(warning.fields?.installed).toBe('T0CONTOSO');
    expect(slack.calls.length).toBe(calls);
  });
});

describe('when the installed workspace is unknown', () => {
  it('auth.test failing at start and again at the request: the request is refused, not let through unchecked', async () => {
    const down = await new FakeSlack({ [ALICE]: { email: 'alice@contoso.com' } }).start();
    for (let i = 0; i < 30; i++) down.failNext('auth.test', 500, {}, { ok: false, error: 'internal_error' });
    const dir = mkdtempSync(join(tmpdir(), 'jit-slack-down-'));
    writeFileSync(join(dir, 'policy.yaml'), POLICY);
    const h2 = await startHarness({ SLACK_SIGNING_SECRET: SECRET, SLACK_BOT_TOKEN: 'xoxb-test-token', SLACK_API_URL: down.apiUrl, JIT_POLICY_FILE: join(dir, 'policy.yaml') });
    try {
      const res = await sendSigned(h2.app.url, slashBody(ALICE, 'rdp vm1 1h from 203.0.113.7', down.responseUrl('x')), { secret: SECRET });
      expect(JSON.parse(res.text)).toMatchObject({ response_type: 'ephemeral', text: expect.stringMatching(/cannot confirm its Slack workspace right now; nothing was read or changed/) });
      const all = await h2.app.service.list(p('dave@contoso.com'), 'all');
      expect(all.kind === 'list' && all.requests).toEqual([]);
      expect(down.of('users.info')).toEqual([]);
    } finally {
      await h2.close();
      await down.close();
    }
  });
});

describe('the workspace decision, for the Enterprise Grid shapes', () => {
  const home = { teamId: 'T0CONTOSO', enterpriseInstall: false };
  const gridWorkspace = { teamId: 'T0CONTOSO', enterpriseId: 'E0CONTOSO', enterpriseInstall: false };
  const orgWide = { teamId: 'E0CONTOSO', enterpriseId: 'E0CONTOSO', enterpriseInstall: true };
  it('a plain workspace: team must match, no enterprise, the user\'s team too', () => {
    expect(foreignWorkspace(home, { team_id: 'T0CONTOSO' })).toBeNull();
    expect(foreignWorkspace(home, { team: { id: 'T0CONTOSO' }, user: { team_id: 'T0CONTOSO' }, enterprise: null })).toBeNull();
    expect(foreignWorkspace(home, { team_id: 'T0OTHER' })).toMatch(/T0OTHER/);
    expect(foreignWorkspace(home, { team_id: 'T0CONTOSO', enterprise_id: 'E0X' })).toMatch(/E0X/);
    expect(foreignWorkspace(home, {})).toMatch(/\(none\)/);
    expect(foreignWorkspace(home, { team_id: 'T0CONTOSO' }, { teamId: 'T0OTHER' })).toMatch(/T0OTHER/);
  });
  it('a workspace of a Grid org: org and workspace must match (members\' home team may differ)', () => {
    expect(foreignWorkspace(gridWorkspace, { team_id: 'T0CONTOSO', enterprise_id: 'E0CONTOSO' })).toBeNull();
    expect(foreignWorkspace(gridWorkspace, { team: { id: 'T0CONTOSO', enterprise_id: 'E0CONTOSO' }, user: { team_id: 'T0SISTER' } })).toBeNull();
    expect(foreignWorkspace(gridWorkspace, { team_id: 'T0SISTER', enterprise_id: 'E0CONTOSO' })).toMatch(/T0SISTER/);
    expect(foreignWorkspace(gridWorkspace, { team_id: 'T0CONTOSO' })).toMatch(/Enterprise Grid org \(none\)/);
    expect(foreignWorkspace(gridWorkspace, { team_id: 'T0CONTOSO', enterprise_id: 'E0OTHER' })).toMatch(/E0OTHER/);
  });
  it('an org-wide install: any workspace of the org, no other org', () => {
    expect(foreignWorkspace(orgWide, { team: null, enterprise: { id: 'E0CONTOSO' }, user: { team_id: 'T0SISTER' } })).toBeNull();
    expect(foreignWorkspace(orgWide, { authorizations: [{ team_id: null, enterprise_id: 'E0CONTOSO' }] })).toBeNull();
    expect(foreignWorkspace(orgWide, { team_id: 'T0X', enterprise_id: 'E0OTHER' })).toMatch(/E0OTHER/);
  });
});
