// Issue 17, item 7: "read leak through card refresh". `POST /api/v1/card-actions {"verb":"refresh"}`
// and a Teams `adaptiveCard/action` refresh invoke rendered any request id without a visibility
// check; approve / deny / revoke / extend on a request the caller may not see answered 403 naming
// the target and its approvers. Now every one of them answers like `GET /requests/{id}`: 404 (a
// plain "no such request" message in Teams and chat), the same as for an id that does not exist,
// and changes nothing.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_POLICY_YAML } from '../fixtures/book.js';
import { FakeConnector, actionActivity, installActivity, personalConversation, postActivity, type TeamsUser } from '../fakes/connector.js';
import { requestOf, startHarness, type Harness } from '../integration/harness.js';
import { API_TOKENS, api } from './lib.js';

const MALLORY: TeamsUser = { id: '29:1mallory', name: 'mallory', aadObjectId: '6f1c0c1e-0000-4000-8000-0000000ba11d', userPrincipalName: 'mallory@contoso.com' };
const ERIN: TeamsUser = { id: '29:1erin', name: 'erin', aadObjectId: '6f1c0c1e-0000-4000-8000-00000000e21a', userPrincipalName: 'erin@contoso.com' };
const SECRET = 'INC-9 db-prod-7 maintenance';
const NOT_AN_ID = 'r222222222';

let h: Harness;
let bf: FakeConnector;
let pendingId = '';
let activeId = '';

beforeAll(async () => {
  bf = await new FakeConnector([MALLORY, ERIN]).start();
  const dir = mkdtempSync(join(tmpdir(), 'jit-sec-teams-'));
  writeFileSync(join(dir, 'policy.yaml'), TEST_POLICY_YAML);
  h = await startHarness({ JIT_API_TOKENS: API_TOKENS, JIT_POLICY_FILE: join(dir, 'policy.yaml'), TEAMS_ALLOW_UNAUTHENTICATED: 'true', TEAMS_SERVICE_URL: bf.url });
  for (const u of [MALLORY, ERIN]) expect((await postActivity(h.app.url, installActivity(bf.url, u))).status).toBe(200);
  pendingId = requestOf((await h.cmd('alice@contoso.com', `rdp vm1 1h from 203.0.113.7 reason "${SECRET}"`)).reply).id;
  activeId = requestOf((await h.cmd('alice@contoso.com', `ssh dev1 1h from 203.0.113.8 reason "${SECRET}"`)).reply).id;
});
afterAll(async () => {
  await h?.close();
  await bf?.close();
});

/** Nothing about the request in an answer: no target, requester, approvers or justification. */
const leaks = (raw: string) => ['vm1', 'dev1', 'alice@', 'oncall', 'bob@', 'carol@', SECRET].filter((s) => raw.includes(s));
/** The answer with the id blanked, to compare a hidden request with one that does not exist. */
const blank = (raw: string, id: string) => raw.split(id).join('<id>');

describe('REST card actions on a request the caller may not see', () => {
  it('refresh answers 404 like GET /requests/{id}, word for word as for an id that does not exist', async () => {
    const hidden = await api(h, 'mallory', 'POST', '/card-actions', { verb: 'refresh', data: { requestId: pendingId } });
    const missing = await api(h, 'mallory', 'POST', '/card-actions', { verb: 'refresh', data: { requestId: NOT_AN_ID } });
    expect(hidden.status).toBe(404);
    expect(hidden.json).toMatchObject({ kind: 'message', code: 'not_found' });
    expect(leaks(hidden.raw)).toEqual([]);
    expect(blank(hidden.raw, pendingId)).toBe(blank(missing.raw, NOT_AN_ID));
    expect((await api(h, 'mallory', 'GET', `/requests/${pendingId}`)).status).toBe(404);
    // alice holds JIT Requester on prod and dev (no read): bob's request is not hers to see either.
    const bobs = requestOf((await h.cmd('bob@contoso.com', 'rdp vm1 1h from 203.0.113.9')).reply).id;
    expect((await api(h, 'alice', 'POST', '/card-actions', { verb: 'refresh', data: { requestId: bobs } })).status).toBe(404);
    await h.cmd('bob@contoso.com', `revoke ${bobs}`);
  });

  it('approve / deny / revoke / extend clicks answer 404 without the target or its approvers, and change nothing', async () => {
    const before = { pending: await h.app.service.get(pendingId), active: await h.app.service.get(activeId), audit: (await h.audit()).length };
    const clicks: Array<[string, Record<string, unknown>]> = [
      ['approve', { requestId: pendingId }],
      ['deny', { requestId: pendingId, reason: 'no' }],
      ['ext_approve', { requestId: activeId }],
      ['revoke', { requestId: activeId }],
      ['extend', { requestId: activeId, addMs: 1_800_000 }],
    ];
    for (const [verb, data] of clicks) {
      const r = await api(h, 'mallory', 'POST', '/card-actions', { verb, data });
      expect(r.status, verb).toBe(404);
      expect(leaks(r.raw), verb).toEqual([]);
    }
    for (const [path, body] of [[`/requests/${pendingId}/approve`, {}], [`/requests/${pendingId}/deny`, { reason: 'no' }], [`/requests/${activeId}/revoke`, {}], [`/requests/${activeId}/extend`, { duration: '30m' }]] as const) {
      const r = await api(h, 'mallory', 'POST', path, body);
      expect(r.status, path).toBe(404);
      expect(leaks(r.raw), path).toEqual([]);
    }
    expect(await h.app.service.get(pendingId)).toEqual(before.pending);
    expect(await h.app.service.get(activeId)).toEqual(before.active);
    expect((await h.audit()).length).toBe(before.audit);
  });

  it('in chat the same: a reply that does not disclose the request', async () => {
    for (const text of [`approve ${pendingId}`, `deny ${pendingId} reason "x"`, `revoke ${activeId}`, `extend ${activeId} 30m`, `status ${pendingId}`]) {
      const { reply, text: shown } = await h.cmd('mallory@contoso.com', text);
      expect(reply, text).toMatchObject({ kind: 'rejected', code: 'not_found' });
      expect(leaks(shown), text).toEqual([]);
    }
    expect((await h.app.service.get(pendingId))!.status).toBe('pending');
    expect((await h.app.service.get(activeId))!.status).toBe('active');
  });

  it('someone who may see it still gets the card (erin, JIT Reader: no buttons)', async () => {
    const r = await api(h, 'erin', 'POST', '/card-actions', { verb: 'refresh', data: { requestId: pendingId } });
    expect(r.status).toBe(200);
    expect(r.json.kind).toBe('card');
    expect(r.raw).toContain(pendingId);
  });
});

describe('Teams refresh invoke on a request the caller may not see', () => {
  const invoke = (from: TeamsUser, verb: string, data: Record<string, unknown>) =>
    postActivity(h.app.url, actionActivity(bf.url, from, verb, data, personalConversation(from))) as Promise<{ status: number; body: { statusCode: number; type: string; value: unknown } }>;

  it('answers a message that does not disclose it (no card), as for an id that does not exist', async () => {
    const hidden = await invoke(MALLORY, 'refresh', { requestId: pendingId });
    const missing = await invoke(MALLORY, 'refresh', { requestId: NOT_AN_ID });
    expect(hidden.body.type).toBe('application/vnd.microsoft.activity.message');
    expect(String(hidden.body.value)).toMatch(/there is no request r[0-9a-z]{9} that you can see/);
    expect(leaks(JSON.stringify(hidden.body))).toEqual([]);
    expect(blank(JSON.stringify(hidden.body), pendingId)).toBe(blank(JSON.stringify(missing.body), NOT_AN_ID));
    const approve = await invoke(MALLORY, 'approve', { requestId: pendingId });
    expect(leaks(JSON.stringify(approve.body))).toEqual([]);
    expect((await h.app.service.get(pendingId))!.status).toBe('pending');
  });

  it('a reader refreshing gets the card', async () => {
    const r = await invoke(ERIN, 'refresh', { requestId: pendingId });
    expect(r.body.type).toBe('application/vnd.microsoft.card.adaptive');
    expect(JSON.stringify(r.body.value)).toContain(pendingId);
  });
});
