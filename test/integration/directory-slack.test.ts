// A policy group backed by a Slack user group, end to end: signed Slack requests to the running
// server, `usergroups.users.list` and `users.info` answered by the fake Slack, the real Redis.
// The group's members (by profile email, or by a `principals.<p>.slack` pin) approve from the card;
// a member removed from the user group loses the right at the next refresh; when Slack will not
// list the group, the last good membership holds until one TTL old and then nobody decides through
// it, and the refusal names the user group and Slack's error.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_POLICY_YAML } from '../fixtures/book.js';
import { FakeSlack, buttonBody, sendSigned, slashBody, type SlackCall } from '../fakes/slack.js';
import { startHarness, waitFor, type Harness } from './harness.js';

const SECRET = 'test-signing-secret-8f3a9c';
const TTL = 60_000;
const POLICY = TEST_POLICY_YAML.replace('oncall: [bob@contoso.com, carol@contoso.com]', 'oncall: { slack: S0ONCALL }').replace(
  'approval: { required: true, approvers: [group:oncall], quorum: 1, timeout: PT1H }',
  `approval: { required: true, approvers: [group:oncall], quorum: 1, timeout: PT1H }
    channels: { slack: { approvals: C0APPROVALS } }`,
);
const ALICE = 'U024ALICE';
const BOB = 'U024BOB'; // pinned in the policy file
const CAROL = 'U024CAROL'; // by profile email

let slack: FakeSlack;
let h: Harness;
let dir: string;
let skew = 0;
let n = 0;

const blocksText = (c: SlackCall) => JSON.stringify(c.body.blocks ?? []);
const ts = (c: SlackCall) => ({ channel: String(c.response?.channel), ts: String(c.response?.ts) });
const replyText = (r: { body: Record<string, unknown> }) => String(r.body.text);

async function request(): Promise<{ id: string; card: SlackCall }> {
  const id = `cmd${++n}`;
  const before = slack.of('chat.postMessage').length;
  await sendSigned(h.app.url, slashBody(ALICE, 'rdp vm1 1h from 203.0.113.7', slack.responseUrl(id)), { secret: SECRET });
  const r = await waitFor('reply', async () => slack.responses.find((x) => x.path === `/respond/${id}`));
  const rid = /Request (r[0-9a-z]{9})/.exec(replyText(r))?.[1];
  if (!rid) throw new Error(`no request id in ${replyText(r)}`);
  const card = await waitFor('approval card', async () => slack.of('chat.postMessage').slice(before).find((c) => c.body.channel === 'C0APPROVALS' && blocksText(c).includes(rid)));
  return { id: rid, card };
}

async function approve(user: string, id: string, card: SlackCall): Promise<string> {
  const cid = `click${++n}`;
  const res = await sendSigned(h.app.url, buttonBody(user, { action_id: 'jit_approve', value: id }, ts(card), slack.responseUrl(cid)), { secret: SECRET });
  expect(res.status).toBe(200);
  return replyText(await waitFor(`reply to ${user}'s click`, async () => slack.responses.find((x) => x.path === `/respond/${cid}`)));
}

beforeAll(async () => {
  slack = await new FakeSlack({
    [ALICE]: { email: 'alice@contoso.com' },
    [BOB]: {},
    [CAROL]: { email: 'carol@contoso.com' },
    U0BOT: { email: 'bot@contoso.com', is_bot: true },
    U0FRANK: { email: 'frank@contoso.com' }, // in no list of the policy file
  }).start();
  slack.usergroups.S0ONCALL = [CAROL, BOB, 'U0BOT'];
  dir = mkdtempSync(join(tmpdir(), 'jit-slackgroups-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  h = await startHarness(
    {
      SLACK_SIGNING_SECRET: SECRET,
      SLACK_BOT_TOKEN: 'xoxb-test-token',
      SLACK_API_URL: slack.apiUrl,
      JIT_POLICY_FILE: join(dir, 'policy.yaml'),
      JIT_DIRECTORY_TTL: `${TTL / 1000}s`,
    },
    { clock: { now: () => Date.now() + skew } },
  );
});

afterAll(async () => {
  await h?.close();
  await slack?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a Slack user group as a policy group', () => {
  it('its members approve from the card: by profile email, and the pinned principal without one; bots are no members', async () => {
    expect(slack.of('usergroups.users.list').at(-1)?.body.usergroup).toBe('S0ONCALL');
    const { id, card } = await request();
    expect((await h.app.service.approversFor((await h.get(id))!)).sort()).toEqual(['bob@contoso.com', 'carol@contoso.com']);
    expect(await approve(CAROL, id, card)).toMatch(/approved/i);
    expect((await h.get(id))?.status).toBe('active');
  });

  it('someone the policy file never names approves once Slack verifies them and the user group lists them', async () => {
    const { id, card } = await request();
    expect(await approve('U0FRANK', id, card)).toContain(`there is no request ${id} that you can see`);
    slack.usergroups.S0ONCALL = [CAROL, BOB, 'U0BOT', 'U0FRANK'];
    await h.app.service.refreshDirectoryGroups();
    expect(await approve('U0FRANK', id, card)).toMatch(/approved/i);
    expect((await h.get(id))?.decisions.map((d) => d.by)).toEqual(['frank@contoso.com']);
  });

  it('a member removed from the user group loses the right at the next refresh', async () => {
    slack.usergroups.S0ONCALL = [BOB];
    await h.app.service.refreshDirectoryGroups();
    const { id, card } = await request();
    expect(await approve(CAROL, id, card)).toContain(`there is no request ${id} that you can see`);
    expect((await h.get(id))?.status).toBe('pending');
    expect(await approve(BOB, id, card)).toMatch(/approved/i);
  });

  it('Slack will not list the group: last good membership until one TTL old, then nobody decides through it and the refusal says why', async () => {
    slack.failNext('usergroups.users.list', 200, {}, { ok: false, error: 'missing_scope', needed: 'usergroups:read', provided: 'chat:write,commands' });
    await h.app.service.refreshDirectoryGroups();
    const { id, card } = await request();
    skew += TTL + 1000;
    const refused = await approve(BOB, id, card);
    expect(refused).toContain('the directory could not be read for group oncall [Slack user group S0ONCALL');
    expect(refused).toContain('usergroups:read');
    expect((await h.get(id))?.status).toBe('pending');
    const ready = await fetch(`${h.app.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { directory: string }).directory).toMatch(/unresolved: Slack user group S0ONCALL: .*usergroups:read/);

    await h.app.service.refreshDirectoryGroups(); // Slack answers again
    expect(await approve(BOB, id, card)).toMatch(/approved/i);
  });
});
