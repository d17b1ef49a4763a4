// Approval workflow on the real Redis + BullMQ: justification rules, auto-approval (static rules
// and PagerDuty on-call with fallback to humans), deny quorum, escalation, expiry reminders.
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestOf, sleep, startHarness, waitFor, type Harness } from './harness.js';
import { p } from '../fixtures/ids.js';

const SUB = '/subscriptions/wf';
const vm = (n: string) => `${SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/${n}`;
const ALICE = 'alice@contoso.com';
const SAM = 'sam@contoso.com';
const BOB = 'bob@contoso.com';
const CAROL = 'carol@contoso.com';
const SEC = 'sec@contoso.com';

const POLICY = `
groups:
  oncall: [${BOB}, ${CAROL}]
  sre: [${SAM}]
roles:
  - { principal: ${ALICE}, role: JIT Requester, scope: ${SUB} }
  - { principal: ${SAM}, role: JIT Requester, scope: ${SUB} }
  - { principal: group:oncall, role: JIT Approver, scope: ${SUB} }
  # Escalation approvers decide only with the approve permission covering the target.
  - { principal: ${SEC}, role: JIT Approver, scope: ${vm('esc1')} }
targets:
  just1: { id: ${vm('just1')}, os: linux }
  auto1: { id: ${vm('auto1')}, os: linux }
  pd1: { id: ${vm('pd1')}, os: linux }
  pdfail: { id: ${vm('pdfail')}, os: linux }
  deny2: { id: ${vm('deny2')}, os: linux }
  esc1: { id: ${vm('esc1')}, os: linux }
  rem1: { id: ${vm('rem1')}, os: linux }
policies:
  sub:
    scope: ${SUB}
    ports: [{ port: 22, maxDuration: PT3H }]
    approval: { required: true, approvers: [group:oncall], timeout: 1h }
  just1:
    scope: ${vm('just1')}
    justification: { required: true, pattern: "^(INC|CHG)-\\\\d+", hint: "a ticket id like INC-4711" }
  auto1:
    scope: ${vm('auto1')}
    autoApprove:
      - name: closed-window
        principals: [group:sre]
        windows: [{ days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "00:00", timeZone: UTC }]
      - name: sre-any-time-short
        principals: [group:sre]
        ports: [22]
        maxDuration: 10m
        windows: [{ days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00", timeZone: Europe/Berlin }]
  pd1:
    scope: ${vm('pd1')}
    autoApprove: [{ name: pagerduty-on-call, onCall: { schedules: [PSCHED1] } }]
  pdfail:
    scope: ${vm('pdfail')}
    autoApprove: [{ name: pagerduty-broken, onCall: { schedules: [PFAIL] } }]
  deny2:
    scope: ${vm('deny2')}
    approval: { denyQuorum: 2 }
  esc1:
    scope: ${vm('esc1')}
    approval: { escalation: { after: 1s, approvers: [${SEC}] } }
    routing:
      - { name: security, when: { roles: [JIT Requester] }, slack: { channel: C-SEC, dm: true } }
  rem1:
    scope: ${vm('rem1')}
    ports: [{ port: 22, maxDuration: 5s }]
    reminder: { before: 2s, extendOptions: [1s, 1h] }
`;

let h: Harness;
let pd: Server;
const pdCalls: { url: string; auth: string | undefined }[] = [];

beforeAll(async () => {
  // A fake PagerDuty REST API v2 (GET /oncalls), answering as PagerDuty documents it.
  pd = createServer((req, res) => {
    pdCalls.push({ url: req.url ?? '', auth: req.headers.authorization });
    const url = new URL(req.url ?? '/', 'http://x');
    const schedules = url.searchParams.getAll('schedule_ids[]');
    if (schedules.includes('PFAIL')) {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"message":"Internal Server Error","code":2001}}');
      return;
    }
    const oncalls = [{ escalation_level: 1, schedule: { id: 'PSCHED1', type: 'schedule_reference' }, user: { id: 'PU1', type: 'user', email: SAM, summary: 'Sam' }, start: null, end: null }];
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ oncalls, limit: 25, offset: 0, more: false, total: null }));
  });
  pd.listen(0, '127.0.0.1');
  await new Promise((r) => pd.once('listening', r));
  const dir = mkdtempSync(join(tmpdir(), 'jit-wf-'));
  const file = join(dir, 'policy.yaml');
  writeFileSync(file, POLICY);
  h = await startHarness({
    JIT_POLICY_FILE: file,
    PAGERDUTY_API_TOKEN: 'pd-test-token',
    PAGERDUTY_API_URL: `http://127.0.0.1:${(pd.address() as AddressInfo).port}`,
  });
});
afterAll(async () => {
  await h?.close();
  pd?.close();
});

const notifications = (id: string) => h.app.feed.since(0).filter((i) => i.notification?.requestId === id).map((i) => i.notification!);

describe('justification rules', () => {
  it('a missing or non-matching reason is refused with the hint and nothing is stored', async () => {
    const before = (await h.audit()).length;
    const missing = await h.cmd(ALICE, 'ssh just1 1h from 203.0.113.7');
    expect(missing.reply).toMatchObject({ kind: 'rejected', code: 'justification_required' });
    expect(missing.text).toContain('this target needs a reason (a ticket id like INC-4711); try jit ssh just1 1h from 203.0.113.7 reason "INC-4711 disk full"');
    const wrong = await h.cmd(ALICE, 'ssh just1 1h from 203.0.113.7 reason "fix stuff"');
    expect(wrong.reply).toMatchObject({ kind: 'rejected', code: 'bad_justification' });
    expect(wrong.text).toContain('a ticket id like INC-4711');
    expect((await h.audit()).length).toBe(before);
    const ok = await h.cmd(ALICE, 'ssh just1 1h from 203.0.113.7 reason "INC-4711 disk full"');
    expect(ok.reply.kind).toBe('pending_approval');
  });
});

describe('auto-approval', () => {
  it('a rule whose conditions all hold opens at once, and the audit names the rule', async () => {
    const { reply } = await h.cmd(SAM, 'ssh auto1 5m from 203.0.113.8');
    expect(reply.kind).toBe('active');
    const id = requestOf(reply).id;
    const approved = (await h.audit(id)).find((e) => e.action === 'request.approved');
    expect(approved).toMatchObject({ actor: 'policy', details: { rule: 'sre-any-time-short' } });
    expect((await h.rules()).some((r) => r.requestId === id)).toBe(true);
  });

  it('an extension is approved by the same rules: within the rule at once, beyond it by approvers', async () => {
    const id = requestOf((await h.cmd(SAM, 'ssh auto1 5m from 203.0.113.8')).reply).id;
    const auto = await h.cmd(SAM, `extend ${id} 4m`);
    expect(auto.reply.kind).toBe('extended');
    const extended = (await h.audit(id)).find((e) => e.action === 'grant.extended');
    expect(extended?.details.rule).toBe('sre-any-time-short');
    const beyond = await h.cmd(SAM, `extend ${id} 30m`);
    expect(beyond.reply).toMatchObject({ kind: 'extension_pending', approvers: [BOB, CAROL] });
    await h.cmd(SAM, `revoke ${id}`);
  });

  it('outside the rule (too long, or not in the group) a human decides', async () => {
    expect((await h.cmd(SAM, 'ssh auto1 30m from 203.0.113.8')).reply.kind).toBe('pending_approval');
    expect((await h.cmd(ALICE, 'ssh auto1 5m from 203.0.113.8')).reply.kind).toBe('pending_approval');
  });

  it('on call in PagerDuty: auto-approved; PagerDuty asked with the API token', async () => {
    const { reply } = await h.cmd(SAM, 'ssh pd1 30m from 203.0.113.9');
    expect(reply.kind).toBe('active');
    expect(pdCalls.at(-1)!.auth).toBe('Token token=pd-test-token');
    expect(pdCalls.at(-1)!.url).toContain('schedule_ids%5B%5D=PSCHED1');
    const approved = (await h.audit(requestOf(reply).id)).find((e) => e.action === 'request.approved');
    expect(approved?.details.rule).toBe('pagerduty-on-call');
  });

  it('not on call: a human decides', async () => {
    expect((await h.cmd(ALICE, 'ssh pd1 30m from 203.0.113.9')).reply.kind).toBe('pending_approval');
  });

  it('PagerDuty failing never auto-approves: it falls back to a human', async () => {
    const calls = pdCalls.length;
    const { reply } = await h.cmd(SAM, 'ssh pdfail 30m from 203.0.113.9');
    expect(pdCalls.length).toBe(calls + 1);
    expect(reply.kind).toBe('pending_approval');
    expect((await h.rules()).some((r) => r.requestId === requestOf(reply).id)).toBe(false);
  });
});

describe('deny quorum', () => {
  it('with denyQuorum 2 one deny is a vote; a second approver\'s deny ends it', async () => {
    const id = requestOf((await h.cmd(ALICE, 'ssh deny2 30m from 203.0.113.7')).reply).id;
    const first = await h.cmd(BOB, `deny ${id} reason "not now"`);
    expect(first.reply).toMatchObject({ kind: 'decided', request: { status: 'pending' } });
    const again = await h.cmd(BOB, `deny ${id}`);
    expect(again.reply).toMatchObject({ kind: 'rejected', code: 'already_decided' });
    const second = await h.cmd(CAROL, `deny ${id}`);
    expect(second.reply).toMatchObject({ kind: 'decided', request: { status: 'denied' } });
  });
});

describe('escalation', () => {
  it('nobody decides within the delay: the escalation approvers are asked and may then decide', async () => {
    const id = requestOf((await h.cmd(ALICE, 'ssh esc1 30m from 203.0.113.7')).reply).id;
    const early = await h.cmd(SEC, `approve ${id}`);
    expect(early.reply).toMatchObject({ kind: 'rejected', code: 'not_approver' });
    expect(notifications(id).find((n) => n.kind === 'approval_needed')!.route).toEqual({ matched: 'security', platforms: { slack: { channel: 'C-SEC', dm: true } } });
    await waitFor('escalated', async () => notifications(id).find((n) => n.kind === 'escalated'), 5000);
    expect(notifications(id).find((n) => n.kind === 'escalated')!.approvers).toEqual([SEC]);
    expect((await h.audit(id)).map((e) => e.action)).toContain('request.escalated');
    const now = await h.cmd(SEC, `approve ${id}`);
    expect(now.reply).toMatchObject({ kind: 'decided', request: { status: 'active' } });
  });

  it('a request decided before the delay is not escalated', async () => {
    const id = requestOf((await h.cmd(ALICE, 'ssh esc1 30m from 203.0.113.7')).reply).id;
    await h.cmd(BOB, `approve ${id}`);
    await sleep(1500);
    expect(notifications(id).map((n) => n.kind)).not.toContain('escalated');
    expect((await h.audit(id)).map((e) => e.action)).not.toContain('request.escalated');
  });
});

describe('expiry reminders', () => {
  it('before expiry the requester is offered only extensions that fit the maximum, then the grant closes on time', async () => {
    const id = requestOf((await h.cmd(ALICE, 'ssh rem1 3s from 203.0.113.7')).reply).id;
    await h.cmd(BOB, `approve ${id}`);
    const reminded = await waitFor('reminder', async () => notifications(id).find((n) => n.kind === 'expiring'), 4000);
    // 3 s granted of a 5 s maximum: +1 s fits, +1 h does not.
    expect(reminded.extendOptionsMs).toEqual([1000]);
    const audit = (await h.audit(id)).find((e) => e.action === 'grant.reminded');
    expect(audit?.details.options).toBe('1s');
    await waitFor('expired', async () => (await h.cmd(ALICE, `status ${id}`)).reply.kind === 'status' && requestOf((await h.cmd(ALICE, `status ${id}`)).reply).status === 'expired', 5000);
    expect((await h.rules()).some((r) => r.requestId === id)).toBe(false);
  });
});

describe('scheduled start', () => {
  const inSeconds = (s: number) => new Date(Math.ceil((Date.now() + s * 1000) / 1000) * 1000).toISOString().replace('.000Z', 'Z');

  it('approved ahead of time, the port opens at the start time by a delayed job and runs its full duration', async () => {
    const at = inSeconds(2);
    const { reply } = await h.cmd(ALICE, `ssh deny2 2s from 203.0.113.7 at ${at}`);
    expect(reply.kind).toBe('pending_approval');
    const id = requestOf(reply).id;
    const approved = await h.cmd(BOB, `approve ${id}`);
    expect(approved.reply).toMatchObject({ kind: 'decided', request: { status: 'approved', startAt: Date.parse(at) } });
    expect(approved.text).toContain(`opens at ${new Date(Date.parse(at)).toISOString().replace(".000Z", "Z")}`);
    expect((await h.rules()).some((r) => r.requestId === id)).toBe(false);
    const rule = await waitFor('opened at start', async () => (await h.rules()).find((r) => r.requestId === id), 5000);
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(at) - 5);
    expect(rule.expiresAt - Date.parse(at)).toBeGreaterThanOrEqual(2000);
    await waitFor('closed after its duration', async () => !(await h.rules()).some((r) => r.requestId === id), 5000);
  });

  it('a scheduled grant revoked before its start never opens', async () => {
    const at = inSeconds(2);
    const id = requestOf((await h.cmd(ALICE, `ssh deny2 2s from 203.0.113.7 at ${at}`)).reply).id;
    await h.cmd(BOB, `approve ${id}`);
    const revoked = await h.cmd(ALICE, `revoke ${id}`);
    expect(revoked.reply).toMatchObject({ kind: 'closed', request: { status: 'cancelled' } });
    await sleep(2500);
    expect((await h.rules()).some((r) => r.requestId === id)).toBe(false);
    expect((await h.audit(id)).map((e) => e.action)).not.toContain('grant.activated');
  });

  it('a start in the past or too far ahead is refused with an example, and nothing is stored', async () => {
    const before = (await h.audit()).length;
    const past = await h.cmd(ALICE, 'ssh deny2 30m from 203.0.113.7 at 2020-01-01T10:00Z');
    expect(past.reply).toMatchObject({ kind: 'rejected', code: 'bad_start' });
    expect(past.text).toContain('is in the past; try jit ssh deny2 30m from 203.0.113.7 at 14:00');
    const far = await h.cmd(ALICE, 'ssh deny2 30m from 203.0.113.7 at 2030-01-01T10:00Z');
    expect(far.text).toContain('more than 7 days ahead');
    expect((await h.audit()).length).toBe(before);
  });
});

describe('extend racing expiry', () => {
  it('has one outcome: extended (rule kept, revocation moved) or expired (rule gone, extend refused), never both', async () => {
    const outcomes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const id = requestOf((await h.cmd(ALICE, `ssh rem1 2s from 203.0.113.${20 + i}`)).reply).id;
      await h.cmd(BOB, `approve ${id}`);
      const active = (await h.app.service.get(id))!;
      // Fire the extension at the expiry instant (plus a little skew per round), racing the BullMQ job.
      await sleep(Math.max(0, active.expiresAt! - Date.now()) + i * 40);
      const ext = await h.app.service.extend(p(BOB), id, 1000).then((r) => r.kind, (e: Error) => `refused: ${e.message}`);
      const now = (await h.app.service.get(id))!;
      const rules = (await h.rules()).filter((r) => r.requestId === id);
      const actions = (await h.audit(id)).map((e) => e.action);
      if (ext === 'extended') {
        expect(now.status).toBe('active');
        // max(old expiry, time of the click) + 1s
        expect(now.expiresAt! - active.expiresAt!).toBeGreaterThanOrEqual(1000);
        expect(now.expiresAt! - active.expiresAt!).toBeLessThan(1500);
        expect(rules).toHaveLength(1);
        expect(rules[0]!.expiresAt).toBe(now.expiresAt);
        expect(await h.app.scheduler.expiryDueAt(id)).toBe(now.expiresAt);
        expect(actions).not.toContain('grant.expired');
        outcomes.push('extended');
      } else {
        expect(ext).toMatch(/only an active grant can be extended|expired/);
        await waitFor('expired', async () => ((await h.app.service.get(id))!.status === 'expired' ? true : null));
        expect(actions).not.toContain('grant.extended');
        outcomes.push('expired');
      }
      // Either way it ends closed, with exactly one expiry in the audit.
      await waitFor('closed', async () => ((await h.app.service.get(id))!.status === 'expired' && (await h.rules()).every((r) => r.requestId !== id)) || null, 10_000);
      expect((await h.audit(id)).filter((e) => e.action === 'grant.expired')).toHaveLength(1);
    }
    expect(outcomes).toHaveLength(6);
  }, 60_000);
});

