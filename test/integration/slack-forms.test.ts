// Slack's request form and App Home, end to end: real signed requests to the running server,
// Web API calls answered by the fake Slack (which refuses views breaking Block Kit's limits, as
// Slack does), the real Redis and the simulated gate.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIONS } from '../../src/adapters/slack/blocks.js';
import { FORM_ACTIONS, FORM_MODAL, SHORTCUT } from '../../src/adapters/slack/views.js';
import type { AccessRequest } from '../../src/core/types.js';
import { PROD, TEST_POLICY_YAML, vmId } from '../fixtures/book.js';
import { viewProblems } from '../fakes/block-kit.js';
import {
  FakeSlack,
  blockSuggestionBody,
  buttonBody,
  homeButtonBody,
  homeOpenedBody,
  sendSigned,
  shortcutBody,
  slashBody,
  viewActionBody,
  viewSubmissionBody,
  type SlackCall,
  type ViewState,
} from '../fakes/slack.js';
import { startHarness, waitFor, type Harness } from './harness.js';
import { p } from '../fixtures/ids.js';
import type { PrincipalId } from '../../src/core/ids.js';

const SECRET = 'test-signing-secret-forms-1';
const MANY = 1000;
const ALICE = 'U024ALICE';
const BOB = 'U024BOB';
const CAROL = 'U024CAROL';
const MALLORY = 'U0MALLORY';
const FRANK = 'U0FRANK';

const bulk = (i: number) => `bulk${String(i).padStart(4, '0')}`;
const POLICY =
  TEST_POLICY_YAML.replace('  mallory@contoso.com: {}\n', '  mallory@contoso.com: {}\n  frank@contoso.com: {}\n')
    .replace('approval: { required: true, approvers: [group:oncall], quorum: 1, timeout: PT1H }', 'approval: { required: true, approvers: [group:oncall], quorum: 1, timeout: PT1H }\n    channels: { slack: { approvals: C0APPROVALS } }')
    .replace('roles:\n', `roles:\n  - { principal: frank@contoso.com, role: JIT Requester, scope: ${PROD}-bulk }\n`)
    .replace('targets:\n', `targets:\n  tick1: { id: ${vmId(PROD, 'tick1')}, os: linux }\n${Array.from({ length: MANY }, (_, i) => `  ${bulk(i)}: { id: ${vmId(`${PROD}-bulk`, bulk(i))}, os: linux }\n`).join('')}`) +
  `  tick1:
    scope: ${vmId(PROD, 'tick1')}
    justification: { required: true, pattern: "^(INC|CHG)-[0-9]+", hint: "a ticket id like INC-4711" }
`;

interface Block {
  type: string;
  block_id?: string;
  element?: { type: string; action_id?: string; options?: Array<{ value: string }>; initial_option?: { value: string } };
  elements?: Array<{ action_id?: string; value?: string }>;
  accessory?: { action_id?: string; value?: string };
  text?: { text: string };
}
interface View {
  type: string;
  callback_id?: string;
  private_metadata?: string;
  blocks: Block[];
}

let slack: FakeSlack;
let h: Harness;
const dir = mkdtempSync(join(tmpdir(), 'jit-slack-forms-'));
let n = 0;

const send = (body: string, contentType?: string) => sendSigned(h.app.url, body, { secret: SECRET, ...(contentType ? { contentType } : {}) });
const viewOf = (c: SlackCall) => c.body.view as View;
const blockOf = (v: View, prefix: string) => v.blocks.find((b) => b.block_id === prefix || b.block_id?.startsWith(`${prefix}_r`));
const homeOf = (user: string) => slack.homes.get(user) as View | undefined;
const homeText = (user: string) => JSON.stringify(homeOf(user)?.blocks ?? []);
const requestsOf = async (who: PrincipalId): Promise<AccessRequest[]> => h.app.service.listVisible(who, { requester: who, limit: 200 });

async function slash(user: string, text: string) {
  const id = `cmd${++n}`;
  const opened = slack.of('views.open').length;
  const res = await send(slashBody(user, text, slack.responseUrl(id)));
  return { res, id, opened, reply: () => waitFor(`reply to "${text}"`, async () => slack.responses.find((r) => r.path === `/respond/${id}`)) };
}

/** `/jit` with no text; the modal it opened. */
async function openForm(user: string): Promise<{ id: string; view: View }> {
  const { res, opened } = await slash(user, '');
  expect(res.status).toBe(200);
  const call = await waitFor('views.open', async () => slack.of('views.open')[opened]);
  return { id: String((call.response?.view as { id: string }).id), view: viewOf(call) };
}

/** Picks `value` in the select `action` of block `block` of the open modal; the view it was updated to. */
async function choose(user: string, viewId: string, block: string, action: string, value: string, state: ViewState): Promise<View> {
  const cur = slack.views.get(viewId)!;
  const before = slack.of('views.update').length;
  const res = await send(viewActionBody(user, { id: viewId, hash: cur.hash, callback_id: FORM_MODAL, private_metadata: String(cur.view.private_metadata) }, { ...state, [block]: { [action]: { type: 'static_select', selected_option: { value } } } }, { action_id: action, block_id: block, selected: value }));
  expect(res.status).toBe(200);
  const call = await waitFor('views.update', async () => slack.of('views.update')[before]);
  expect(call.response?.ok, JSON.stringify(call.response)).toBe(true);
  return viewOf(call);
}

async function submit(user: string, viewId: string, state: ViewState): Promise<Record<string, unknown>> {
  const cur = slack.views.get(viewId)!;
  const res = await send(viewSubmissionBody(user, { id: viewId, callback_id: FORM_MODAL, private_metadata: String(cur.view.private_metadata), blocks: cur.view.blocks }, state));
  expect(res.status).toBe(200);
  return res.text ? (JSON.parse(res.text) as Record<string, unknown>) : {};
}

const select = (value: string) => ({ type: 'static_select', selected_option: { value } });
const text = (value: string | null) => ({ type: 'plain_text_input', value });

beforeAll(async () => {
  slack = await new FakeSlack({
    [ALICE]: { email: 'alice@contoso.com', tz: 'Europe/Berlin' },
    [BOB]: { email: 'bob@contoso.com' },
    [CAROL]: { email: 'carol@contoso.com' },
    [MALLORY]: { email: 'mallory@contoso.com' },
    [FRANK]: { email: 'frank@contoso.com' },
  }).start();
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  h = await startHarness({ SLACK_SIGNING_SECRET: SECRET, SLACK_BOT_TOKEN: 'xoxb-test-token', SLACK_API_URL: slack.apiUrl, JIT_POLICY_FILE: join(dir, 'policy.yaml') });
}, 60_000);

afterAll(async () => {
  await h?.close();
  await slack?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the request form (modal)', () => {
  it('/jit with no text opens the form: the VMs the person may request, nothing else yet', async () => {
    const { view } = await openForm(ALICE);
    expect(viewProblems(view)).toEqual([]);
    expect(view.callback_id).toBe(FORM_MODAL);
    const target = blockOf(view, 'target')!;
    expect(target.element?.type).toBe('static_select');
    expect(target.element?.options?.map((o) => o.value)).toEqual(['db1', 'dev1', 'quick1', 'quorum2', 'tick1', 'vm1']);
    expect(blockOf(view, 'access')).toBeUndefined();
  });

  it('choosing a VM re-draws the form with its policy: access, durations up to its maximum, its fixed source', async () => {
    const { id } = await openForm(ALICE);
    const view = await choose(ALICE, id, 'target', FORM_ACTIONS.target, 'db1', {});
    expect(viewProblems(view)).toEqual([]);
    expect(blockOf(view, 'target')!.element?.initial_option?.value).toBe('db1');
    expect(blockOf(view, 'access')!.element?.options?.map((o) => o.value)).toEqual(['ssh']);
    expect(blockOf(view, 'duration')!.element?.options?.map((o) => Number(o.value))).toEqual([300_000, 900_000, 1_800_000, 3_600_000]);
    expect(blockOf(view, 'source')!.element).toMatchObject({ type: 'radio_buttons', options: [{ value: 'fixed' }] });
    // Another VM: the block ids move on, so no choice of the first one lingers.
    const again = await choose(ALICE, id, 'target', FORM_ACTIONS.target, 'dev1', {});
    expect(blockOf(again, 'access')!.block_id).not.toBe(blockOf(view, 'access')!.block_id);
    expect(blockOf(again, 'access')!.element?.options?.map((o) => o.value)).toEqual(['ssh', 'port:8443/tcp']);
    const port = await choose(ALICE, id, blockOf(again, 'access')!.block_id!, FORM_ACTIONS.access, 'port:8443/tcp', { target: { [FORM_ACTIONS.target]: select('dev1') } });
    expect(Math.max(...blockOf(port, 'duration')!.element!.options!.map((o) => Number(o.value)))).toBe(1_800_000);
  });

  it('an invalid submission answers errors by block, and creates nothing', async () => {
    const before = (await requestsOf(p('alice@contoso.com'))).length;
    const { id } = await openForm(ALICE);
    const view = await choose(ALICE, id, 'target', FORM_ACTIONS.target, 'tick1', {});
    const b = (p: string) => blockOf(view, p)!.block_id!;
    const answer = await submit(ALICE, id, {
      target: { [FORM_ACTIONS.target]: select('tick1') },
      [b('access')]: { [FORM_ACTIONS.access]: select('ssh') },
      [b('duration')]: { duration: select('3600000') },
      [b('source_text')]: { source_text: text('198.51.100.300') },
      [b('justification')]: { justification: text('because') },
    });
    expect(answer.response_action).toBe('errors');
    const errors = answer.errors as Record<string, string>;
    expect(Object.keys(errors)).toEqual([b('source_text')]);
    const bad = await submit(ALICE, id, {
      target: { [FORM_ACTIONS.target]: select('tick1') },
      [b('access')]: { [FORM_ACTIONS.access]: select('ssh') },
      [b('duration')]: { duration: select('3600000') },
      [b('source_text')]: { source_text: text('203.0.113.7') },
      [b('justification')]: { justification: text('because') },
    });
    expect(bad).toEqual({ response_action: 'errors', errors: { [b('justification')]: expect.stringMatching(/ticket id like INC-4711/) } });
    expect((await requestsOf(p('alice@contoso.com'))).length).toBe(before);
  });

  it('a valid submission makes the request; the approver approves; the App Home shows the grant', async () => {
    // Homes are kept current for those who have opened theirs (alice and carol here; bob has not).
    for (const u of [ALICE, CAROL]) {
      const before = slack.of('views.publish').length;
      expect((await send(homeOpenedBody(u), 'application/json')).status).toBe(200);
      await waitFor('home published', async () => slack.of('views.publish').slice(before).find((c) => c.body.user_id === u));
    }
    const { id } = await openForm(ALICE);
    const view = await choose(ALICE, id, 'target', FORM_ACTIONS.target, 'vm1', {});
    const b = (p: string) => blockOf(view, p)!.block_id!;
    const cards = slack.of('chat.postMessage').length;
    const answer = await submit(ALICE, id, {
      target: { [FORM_ACTIONS.target]: select('vm1') },
      [b('access')]: { [FORM_ACTIONS.access]: select('rdp') },
      [b('duration')]: { duration: select('3600000') },
      [b('source_text')]: { source_text: text('203.0.113.7') },
      [b('justification')]: { justification: text('INC-1 patching') },
      [b('start')]: { start: { type: 'datetimepicker', selected_date_time: null } },
    });
    expect(answer.response_action).toBe('update');
    expect(viewProblems(answer.view)).toEqual([]);
    const reqId = /Request (r[0-9a-z]{9})/.exec(JSON.stringify(answer.view))?.[1];
    expect(reqId).toBeDefined();
    const req = (await requestsOf(p('alice@contoso.com'))).find((r) => r.id === reqId)!;
    expect(req).toMatchObject({ status: 'pending', target: 'vm1', source: '203.0.113.7/32', justification: 'INC-1 patching', origin: { via: 'slack', timeZone: 'Europe/Berlin' } });
    // The approvers' card, as for a typed request; alice's and the approvers' homes show it.
    const card = await waitFor('approval card', async () => slack.of('chat.postMessage').slice(cards).find((c) => c.body.channel === 'C0APPROVALS' && JSON.stringify(c.body.blocks).includes(reqId!)));
    await waitFor('alice home with the pending request', async () => homeText(ALICE).includes(reqId!) && homeText(ALICE).includes('Withdraw'));
    await waitFor('carol home with the decision', async () => homeText(CAROL).includes(reqId!) && homeText(CAROL).includes(ACTIONS.approve));
    expect(viewProblems(homeOf(CAROL))).toEqual([]);
    // Bob approves on the card (the existing button handler).
    const res = await send(buttonBody(BOB, { action_id: ACTIONS.approve, value: reqId! }, { channel: String(card.response?.channel), ts: String(card.response?.ts) }, slack.responseUrl(`approve${++n}`)));
    expect(res.status).toBe(200);
    await waitFor('alice home with the grant', async () => homeText(ALICE).includes('Open now') && homeText(ALICE).includes('mstsc /v:vm1.contoso.example:3389') && homeText(ALICE).includes(`${ACTIONS.extend}_1800000`));
    const home = homeOf(ALICE)!;
    expect(viewProblems(home)).toEqual([]);
    const closeBtn = home.blocks.flatMap((x) => x.elements ?? []).find((e) => e.action_id === ACTIONS.revoke && e.value === reqId);
    expect(closeBtn).toBeDefined();
    await waitFor('carol home without the decision', async () => !homeText(CAROL).includes(reqId!));
    // Bob decided on the card; he never opened his home, so none was drawn for him.
    await h.app.homesSettled();
    expect(slack.of('views.publish').filter((c) => c.body.user_id === BOB)).toEqual([]);
    // Extend from the home (the reminder's handler): vm1 needs approvers, so it waits for them;
    // carol approves the extension from her home (the extension card's handler).
    const before = (await h.get(reqId!))!.expiresAt!;
    await send(homeButtonBody(ALICE, { action_id: `${ACTIONS.extend}_1800000`, value: `${reqId}:1800000` }));
    await waitFor('extension waiting', async () => Boolean((await h.get(reqId!))?.pendingExtension));
    await waitFor('carol home with the extension', async () => homeText(CAROL).includes(ACTIONS.extApprove) && homeText(CAROL).includes(reqId!));
    await waitFor('alice home says it waits', async () => homeText(ALICE).includes('An extension waits for the approvers'));
    await send(homeButtonBody(CAROL, { action_id: ACTIONS.extApprove, value: reqId! }));
    await waitFor('extended', async () => (await h.get(reqId!))!.expiresAt! === before + 1_800_000);
    await waitFor('carol home without the extension', async () => !homeText(CAROL).includes(ACTIONS.extApprove));
    // Close from the home: the same revoke handler; the home is drawn again, the grant in the history.
    await send(homeButtonBody(ALICE, { action_id: ACTIONS.revoke, value: reqId! }));
    await waitFor('revoked', async () => (await h.get(reqId!))?.status === 'revoked');
    await waitFor('alice home with the history', async () => homeText(ALICE).includes('Your last 7 days') && !homeText(ALICE).includes(`${ACTIONS.extend}_1800000`) && homeText(ALICE).includes(reqId!));
  });

  it('Withdraw on the home cancels a waiting request; a refusal from the home arrives by DM', async () => {
    const r = await h.app.views.submitForm(p('alice@contoso.com'), 'slack', { target: 'vm1', access: 'rdp', duration: '1h', source: '203.0.113.7' });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const reqId = (r.reply as { request: AccessRequest }).request.id;
    await send(homeButtonBody(ALICE, { action_id: ACTIONS.revoke, value: reqId }));
    await waitFor('cancelled', async () => (await h.get(reqId))?.status === 'cancelled');
    // Mallory cannot close alice's request: told by DM, nothing changes.
    const dms = slack.of('chat.postMessage').filter((c) => c.body.channel === MALLORY).length;
    await send(homeButtonBody(MALLORY, { action_id: ACTIONS.revoke, value: reqId }));
    const dm = await waitFor('refusal by DM', async () => slack.of('chat.postMessage').filter((c) => c.body.channel === MALLORY)[dms]);
    expect(String(dm.body.text)).toMatch(/no request .* that you can see/);
  });

  it('a submission slower than Slack waits for (the card post is rate-limited) answers in the modal, then by DM', async () => {
    const { id } = await openForm(ALICE);
    const view = await choose(ALICE, id, 'target', FORM_ACTIONS.target, 'vm1', {});
    const b = (p: string) => blockOf(view, p)!.block_id!;
    // Slack answers the approval card's post with 429 Retry-After 3: the use case waits it out.
    slack.failNext('chat.postMessage', 429, { 'retry-after': '3' }, { ok: false, error: 'ratelimited' }, (body) => body.channel === 'C0APPROVALS');
    const dms = slack.of('chat.postMessage').filter((c) => c.body.channel === ALICE).length;
    const answer = await submit(ALICE, id, {
      target: { [FORM_ACTIONS.target]: select('vm1') },
      [b('access')]: { [FORM_ACTIONS.access]: select('rdp') },
      [b('duration')]: { duration: select('1800000') },
      [b('source_text')]: { source_text: text('203.0.113.9') },
    });
    expect(answer.response_action).toBe('update');
    expect(JSON.stringify(answer.view)).toContain('arrives by direct message');
    // (Other DMs to alice, such as the previous test's notices, may arrive meanwhile.)
    const made = await waitFor('the answer by DM', async () => {
      for (const c of slack.of('chat.postMessage').filter((x) => x.body.channel === ALICE).slice(dms)) {
        const id = /Request (r[0-9a-z]{9})/.exec(String(c.body.text))?.[1];
        const r = id ? await h.get(id) : null;
        if (r?.source === '203.0.113.9/32') return r;
      }
      return null;
    });
    const reqId = made.id;
    expect(made.status).toBe('pending');
    await h.app.service.revoke(p('alice@contoso.com'), reqId!);
  });

  it('someone who may request nothing gets a clear ephemeral answer and no modal', async () => {
    const { reply, opened } = await slash(MALLORY, '');
    const r = await reply();
    expect(String(r.body.text)).toMatch(/no JIT role yet.*JIT Requester/);
    expect(r.body.response_type).toBe('ephemeral');
    expect(slack.of('views.open').length).toBe(opened);
  });

  it('the "Request access" shortcut opens the same form', async () => {
    const before = slack.of('views.open').length;
    const { body, triggerId } = shortcutBody(ALICE, SHORTCUT);
    expect((await send(body)).status).toBe(200);
    const call = await waitFor('views.open', async () => slack.of('views.open')[before]);
    expect(call.body.trigger_id).toBe(triggerId);
    expect(viewOf(call).callback_id).toBe(FORM_MODAL);
  });
});

describe('1,000 VMs', () => {
  it('the VM field is a typeahead fed by the options load URL, within Block Kit limits', async () => {
    const { id, view } = await openForm(FRANK);
    expect(viewProblems(view)).toEqual([]);
    expect(blockOf(view, 'target')!.element).toMatchObject({ type: 'external_select', action_id: FORM_ACTIONS.target });
    const all = await send(blockSuggestionBody(FRANK, { action_id: FORM_ACTIONS.target, block_id: 'target' }, '', { id }));
    const options = (JSON.parse(all.text) as { options: Array<{ value: string; text: { text: string } }> }).options;
    expect(options).toHaveLength(100);
    const some = await send(blockSuggestionBody(FRANK, { action_id: FORM_ACTIONS.target, block_id: 'target' }, 'bulk099', { id }));
    expect((JSON.parse(some.text) as { options: Array<{ value: string }> }).options.map((o) => o.value)).toEqual(Array.from({ length: 10 }, (_, i) => bulk(990 + i)));
    // Alice sees none of frank's VMs through the search.
    const hers = await send(blockSuggestionBody(ALICE, { action_id: FORM_ACTIONS.target, block_id: 'target' }, 'bulk', { id }));
    expect(JSON.parse(hers.text)).toEqual({ options: [] });
    const chosen = await choose(FRANK, id, 'target', FORM_ACTIONS.target, bulk(999), {});
    expect(viewProblems(chosen)).toEqual([]);
    expect(blockOf(chosen, 'target')!.element?.initial_option?.value).toBe(bulk(999));
  });
});

describe('App Home', () => {
  it('is published when opened: sections, within Block Kit limits', async () => {
    const before = slack.of('views.publish').length;
    const res = await send(homeOpenedBody(BOB), 'application/json');
    expect(res.status).toBe(200);
    const call = await waitFor('views.publish', async () => slack.of('views.publish').slice(before).find((c) => c.body.user_id === BOB));
    expect(viewProblems(call.body.view)).toEqual([]);
    const t = JSON.stringify(call.body.view);
    for (const s of ['Your requests waiting', 'Open now', 'Your last 7 days', FORM_ACTIONS.open]) expect(t).toContain(s);
  });

  it('Slack refused no view or message in this whole run', () => {
    expect(slack.refused).toEqual([]);
  });
});

describe('the app manifest', () => {
  it('has the home tab, its event, the shortcut, the options URL and no scope the forms do not need', () => {
    const m = parse(readFileSync('manifest/slack/manifest.yaml', 'utf8')) as {
      features: { app_home: { home_tab_enabled: boolean }; shortcuts: Array<{ callback_id: string; type: string }> };
      settings: { event_subscriptions: { request_url: string; bot_events: string[] }; interactivity: { request_url: string; message_menu_options_url: string } };
      oauth_config: { scopes: { bot: string[] } };
    };
    expect(m.features.app_home.home_tab_enabled).toBe(true);
    expect(m.features.shortcuts).toEqual([expect.objectContaining({ callback_id: SHORTCUT, type: 'global' })]);
    expect(m.settings.event_subscriptions.bot_events).toEqual(['app_home_opened']);
    for (const url of [m.settings.event_subscriptions.request_url, m.settings.interactivity.message_menu_options_url]) expect(new URL(url).pathname).toBe('/slack/events');
    // views.open / update / publish need no scope; app_home_opened needs none; the shortcut rides on `commands`.
    const called = new Set(slack.calls.map((c) => c.method.split('!')[0]!));
    for (const m of ['views.open', 'views.update', 'views.publish']) expect(called).toContain(m);
    expect([...m.oauth_config.scopes.bot].sort()).toEqual(['chat:write', 'commands', 'users:read', 'users:read.email']);
  });
});
