// The walking skeleton end to end, on the real Redis, BullMQ and the simulated gate, driven
// through the local channel's HTTP API as the CLI drives it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestOf, sleep, startHarness, waitFor, type Harness } from './harness.js';

const ALICE = 'alice@contoso.com';
const BOB = 'bob@contoso.com';
const CAROL = 'carol@contoso.com';
const DAVE = 'dave@contoso.com';
const ERIN = 'erin@contoso.com';
const MALLORY = 'mallory@contoso.com';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

async function pending(text: string, as = ALICE): Promise<string> {
  const { reply } = await h.cmd(as, text);
  expect(reply.kind, JSON.stringify(reply)).toBe('pending_approval');
  return requestOf(reply).id;
}

describe('request → approve → active → expired', () => {
  it('opens the port on approval and a BullMQ delayed job closes it on time, every step audited', async () => {
    const id = await pending('rdp vm1 2s from 203.0.113.7 reason "INC-4711 disk full"');
    const waiting = await h.get(id);
    expect(waiting).toMatchObject({ status: 'pending', source: '203.0.113.7/32', justification: 'INC-4711 disk full' });
    expect((await h.rules()).filter((r) => r.requestId === id)).toEqual([]);

    const { reply, text } = await h.cmd(BOB, `approve ${id}`);
    expect(reply.kind).toBe('decided');
    const active = requestOf(reply);
    expect(active.status).toBe('active');
    expect(text).toContain(`Request ${id} approved; open until`);

    const rules = (await h.rules()).filter((r) => r.requestId === id);
    expect(rules).toHaveLength(1);
    expect(rules[0]).toMatchObject({
      name: `jit-${id}-3389`, direction: 'Inbound', access: 'Allow', protocol: 'tcp', sourcePrefix: '203.0.113.7/32', destinationPort: 3389,
    });
    expect(rules[0]!.description).toContain(id);
    expect(await h.app.scheduler.expiryDueAt(id)).toBe(active.expiresAt);

    // The revocation job fires at expiry and removes the rule.
    await waitFor('rule removed', async () => (await h.rules()).every((r) => r.requestId !== id), 10_000);
    const closedAt = Date.now();
    expect(closedAt).toBeGreaterThanOrEqual(active.expiresAt! - 50);
    expect((await h.get(id))!.status).toBe('expired');

    const actions = (await h.audit(id)).map((e) => `${e.action}:${e.actor}`);
    expect(actions).toEqual([
      `request.created:${ALICE}`,
      `request.approval_vote:${BOB}`,
      `request.approved:${BOB}`,
      'grant.activated:system',
      'rule.applied:system',
      'grant.expired:system',
      'rule.removed:system',
    ]);
  });

  it('a policy without approval opens at once; a fixed source range needs no "from"', async () => {
    const { reply, text } = await h.cmd(ALICE, 'ssh dev1 2s from 198.51.100.20');
    expect(reply.kind).toBe('active');
    expect(text).toContain('connect: ssh -p 22 10.1.0.4');
    const id = requestOf(reply).id;
    expect((await h.rules()).some((r) => r.requestId === id)).toBe(true);
    expect((await h.audit(id)).map((e) => e.action).slice(0, 2)).toEqual(['request.created', 'request.approved']);

    const db = await h.cmd(BOB, 'ssh db1 10m');
    expect(requestOf(db.reply)).toMatchObject({ status: 'pending', source: '203.0.113.0/24' });
  });

  it('the requester can revoke early: rule gone at once and the revocation job removed', async () => {
    const { reply } = await h.cmd(ALICE, 'ssh dev1 1h from 198.51.100.21');
    const id = requestOf(reply).id;
    expect(await h.app.scheduler.expiryDueAt(id)).not.toBeNull();
    const revoked = await h.cmd(ALICE, `revoke ${id}`);
    expect(revoked.reply.kind).toBe('closed');
    expect(requestOf(revoked.reply).status).toBe('revoked');
    expect((await h.rules()).some((r) => r.requestId === id)).toBe(false);
    expect(await h.app.scheduler.expiryDueAt(id)).toBeNull();
    const again = await h.cmd(ALICE, `revoke ${id}`);
    expect(again.reply).toMatchObject({ kind: 'rejected', code: 'invalid_transition' });
    expect(again.text).toContain('was revoked');
  });

  it('extend reschedules the revocation job: the rule outlives the old expiry and closes at the new one', async () => {
    const id = await pending('rdp vm1 2s from 203.0.113.8');
    const active = requestOf((await h.cmd(CAROL, `approve ${id}`)).reply);
    const oldExpiry = active.expiresAt!;
    const ext = await h.cmd(DAVE, `extend ${id} 2s`);
    expect(ext.reply.kind, ext.text).toBe('extended');
    const newExpiry = requestOf(ext.reply).expiresAt!;
    expect(newExpiry - oldExpiry).toBeGreaterThanOrEqual(2000);
    expect(await h.app.scheduler.expiryDueAt(id)).toBe(newExpiry);

    await sleep(Math.max(0, oldExpiry - Date.now()) + 700);
    expect((await h.rules()).some((r) => r.requestId === id)).toBe(true); // still open after the old expiry
    await waitFor('rule removed at the new expiry', async () => (await h.rules()).every((r) => r.requestId !== id), 10_000);
    expect(Date.now()).toBeGreaterThanOrEqual(newExpiry - 50);
    const audit = (await h.audit(id)).map((e) => e.action);
    expect(audit.filter((a) => a === 'grant.extended')).toHaveLength(1);
    expect(audit.filter((a) => a === 'grant.expired')).toHaveLength(1);
  });

  it('a requester\'s extension of a grant that needed approval goes to the approvers; nothing moves until they approve', async () => {
    const id = await pending('rdp vm1 1h from 203.0.113.9');
    await h.cmd(BOB, `approve ${id}`);
    const before = await h.get(id);
    const dueBefore = await h.app.scheduler.expiryDueAt(id);
    const { reply, text } = await h.cmd(ALICE, `extend ${id} 1h`);
    expect(reply).toMatchObject({ kind: 'extension_pending', approvers: [BOB, CAROL] });
    expect(text).toContain('is waiting for approval');
    expect((await h.get(id))!.expiresAt).toBe(before!.expiresAt);
    expect(await h.app.scheduler.expiryDueAt(id)).toBe(dueBefore);
    const twice = await h.cmd(ALICE, `extend ${id} 30m`);
    expect(twice.reply).toMatchObject({ kind: 'rejected', code: 'conflict' });
    const self = await h.cmd(ALICE, `approve ${id}`);
    expect(self.reply).toMatchObject({ kind: 'rejected' });
    const ok = await h.cmd(CAROL, `approve ${id}`);
    expect(ok.reply).toMatchObject({ kind: 'extended' });
    const after = await h.get(id);
    expect(after!.expiresAt).toBe(before!.expiresAt! + 3600_000);
    expect(await h.app.scheduler.expiryDueAt(id)).toBe(after!.expiresAt);
    expect((await h.audit(id)).map((e) => e.action)).toEqual(expect.arrayContaining(['grant.extension_requested', 'grant.extended']));
    const tooLong = await h.cmd(DAVE, `extend ${id} 5h`);
    expect(tooLong.reply).toMatchObject({ kind: 'rejected', code: 'duration_too_long' });
    expect(tooLong.text).toContain('allows at most 3h for a whole grant');
    await h.cmd(ALICE, `revoke ${id}`);
    const late = await h.cmd(ALICE, `extend ${id} 30m`);
    expect(late.reply).toMatchObject({ kind: 'rejected', code: 'invalid_transition' });
    expect(late.text).toContain('was revoked');
  });

  it('an approver can deny a requested extension; the grant keeps its expiry', async () => {
    const id = await pending('rdp vm1 1h from 203.0.113.9');
    await h.cmd(BOB, `approve ${id}`);
    const before = await h.get(id);
    await h.cmd(ALICE, `extend ${id} 1h`);
    const denied = await h.cmd(CAROL, `deny ${id} reason "not needed"`);
    expect(denied.text).toContain('Extension of');
    const after = await h.get(id);
    expect(after!.status).toBe('active');
    expect(after!.expiresAt).toBe(before!.expiresAt);
    expect(after!.pendingExtension).toBeUndefined();
    await h.cmd(ALICE, `revoke ${id}`);
  });
});

describe('approvals', () => {
  it('two approvers clicking at once: exactly one decision wins, one rule is written', async () => {
    const id = await pending('rdp vm1 1h from 203.0.113.10');
    const results = await Promise.all([h.cmd(BOB, `approve ${id}`), h.cmd(CAROL, `approve ${id}`)]);
    const kinds = results.map((r) => r.reply.kind).sort();
    expect(kinds).toEqual(['decided', 'rejected']);
    const loser = results.find((r) => r.reply.kind === 'rejected')!;
    expect(loser.reply).toMatchObject({ code: 'already_decided' });
    expect(loser.text).toMatch(/was approved by (bob|carol)@contoso\.com/);
    expect((await h.rules()).filter((r) => r.requestId === id)).toHaveLength(1);
    const audit = (await h.audit(id)).map((e) => e.action);
    expect(audit.filter((a) => a === 'request.approved')).toHaveLength(1);
    expect(audit.filter((a) => a === 'grant.activated')).toHaveLength(1);
    await h.cmd(ALICE, `revoke ${id}`);
  });

  it('self-approval is refused and changes nothing', async () => {
    const id = await pending('rdp vm1 1h from 203.0.113.11', BOB); // bob requests, bob is an approver
    const before = await h.audit(id);
    const { reply, text } = await h.cmd(BOB, `approve ${id}`);
    expect(reply).toMatchObject({ kind: 'rejected', code: 'self_approval' });
    expect(text).toContain('cannot approve your own request');
    expect((await h.get(id))!.status).toBe('pending');
    expect(await h.audit(id)).toEqual(before);
    expect((await h.rules()).some((r) => r.requestId === id)).toBe(false);
  });

  it('a non-approver (requester role, reader, stranger) cannot decide', async () => {
    const id = await pending('rdp vm1 1h from 203.0.113.12', BOB);
    for (const who of [ERIN, DAVE]) {
      const { reply, text } = await h.cmd(who, `approve ${id}`);
      expect(reply, who).toMatchObject({ kind: 'rejected', code: 'not_approver' });
      expect(text).toContain('not an approver for vm1');
      expect((await h.cmd(who, `deny ${id}`)).reply).toMatchObject({ kind: 'rejected', code: 'not_approver' });
    }
    // Those who may not even see bob's request (alice: JIT Requester only; mallory: no role) are
    // told it does not exist, without its target or approvers.
    for (const who of [ALICE, MALLORY]) {
      const { reply, text } = await h.cmd(who, `approve ${id}`);
      expect(reply, who).toMatchObject({ kind: 'rejected', code: 'not_found' });
      expect(text).not.toContain('vm1');
      expect((await h.cmd(who, `deny ${id}`)).reply).toMatchObject({ kind: 'rejected', code: 'not_found' });
    }
    expect((await h.get(id))!.status).toBe('pending');
    expect((await h.audit(id)).map((e) => e.action)).toEqual(['request.created']);
  });

  it('quorum 2 needs two distinct approvers', async () => {
    const id = await pending('ssh quorum2 1h from 203.0.113.13');
    const first = await h.cmd(BOB, `approve ${id}`);
    expect(first.text).toContain('(1 of 2)');
    expect((await h.cmd(BOB, `approve ${id}`)).reply).toMatchObject({ kind: 'rejected', code: 'already_decided' });
    const second = await h.cmd(CAROL, `approve ${id}`);
    expect(requestOf(second.reply).status).toBe('active');
    await h.cmd(ALICE, `revoke ${id}`);
  });

  it('a request nobody decides times out by its approval-timeout job', async () => {
    const id = await pending('ssh quick1 1h from 203.0.113.18');
    await waitFor('timed out', async () => (await h.get(id))?.status === 'timed_out', 10_000);
    const late = await h.cmd(BOB, `approve ${id}`);
    expect(late.reply).toMatchObject({ kind: 'rejected', code: 'already_decided' });
    expect(late.text).toContain('timed out waiting for approval');
    expect((await h.rules()).some((r) => r.requestId === id)).toBe(false);
    expect((await h.audit(id)).map((e) => e.action)).toEqual(['request.created', 'request.timed_out']);
  });

  it('deny ends the request with the reason and opens nothing', async () => {
    const id = await pending('rdp vm1 1h from 203.0.113.14');
    const { reply } = await h.cmd(CAROL, `deny ${id} reason "no change window"`);
    expect(requestOf(reply)).toMatchObject({ status: 'denied', statusReason: 'no change window' });
    expect((await h.cmd(BOB, `approve ${id}`)).text).toContain('was denied by carol@contoso.com (no change window)');
    expect((await h.rules()).some((r) => r.requestId === id)).toBe(false);
  });
});

describe('bad input changes nothing', () => {
  it.each([
    ['an unknown VM', ALICE, 'rdp vm9 1h from 203.0.113.7', 'unknown_target', 'there is no target named "vm9"; you can request: vm1, db1, dev1'],
    ['an unconfigured port', ALICE, 'port 8443 vm1 1h from 203.0.113.7', 'port_not_allowed', 'vm1 does not allow 8443/tcp; allowed: 3389/tcp, 22/tcp'],
    ['a duration over the maximum', ALICE, 'rdp vm1 99h', 'duration_too_long', 'vm1 allows at most 3h on 3389; try jit rdp vm1 3h'],
    ['a malformed source', ALICE, 'rdp vm1 1h from 300.1.1.1', 'bad_source', '300.1.1.1'],
    ['a disallowed source', ALICE, 'ssh db1 1h from 198.51.100.7', 'source_not_allowed', 'allowed sources: 203.0.113.0/24'],
    ['Any where the policy does not allow it', ALICE, 'ssh db1 1h from *', 'source_not_allowed', 'Any source'],
    ['a requester without the role', ERIN, 'rdp vm1 1h from 203.0.113.7', 'forbidden', 'no JIT Requester role covering vm1'],
    ['a stranger', MALLORY, 'rdp vm1 1h from 203.0.113.7', 'forbidden', 'no JIT Requester role'],
    ['no source and no PUBLIC_URL for the link', ALICE, 'rdp vm1 1h', 'source_required', 'try jit rdp vm1 1h from 203.0.113.7'],
    ['gibberish', ALICE, 'open sesame', 'unknown_command', 'unknown command'],
  ])('%s', async (_what, who, text, code, message) => {
    const rulesBefore = await h.rules();
    const auditBefore = (await h.audit()).length;
    const mineBefore = requestList(await h.cmd(who, 'list'));
    const res = await h.cmd(who, text);
    expect(res.reply).toMatchObject({ kind: 'rejected', code });
    expect(res.text).toContain(message);
    expect(await h.rules()).toEqual(rulesBefore);
    expect((await h.audit()).length).toBe(auditBefore);
    expect(requestList(await h.cmd(who, 'list'))).toEqual(mineBefore);
  });
});

function requestList(res: { reply: { kind: string } }): string[] {
  const r = res.reply as { kind: string; requests?: { id: string; status: string }[] };
  return (r.requests ?? []).map((x) => `${x.id}:${x.status}`);
}

describe('restarts', () => {
  it('a worker restarted between grant and expiry still revokes on time', async () => {
    const id = await pending('rdp vm1 3s from 203.0.113.15');
    const active = requestOf((await h.cmd(BOB, `approve ${id}`)).reply);
    await h.app.stopWorker(); // the worker goes away...
    await sleep(500);
    h.app.startWorker(); // ...and a new one starts before expiry
    await waitFor('rule removed by the new worker', async () => (await h.rules()).every((r) => r.requestId !== id), 10_000);
    expect(Date.now()).toBeGreaterThanOrEqual(active.expiresAt! - 50);
    expect((await h.get(id))!.status).toBe('expired');
  });

  it('a worker that was down at expiry revokes as soon as it is back', async () => {
    const id = await pending('rdp vm1 1s from 203.0.113.16');
    await h.cmd(BOB, `approve ${id}`);
    await h.app.stopWorker();
    await sleep(1500);
    expect((await h.rules()).some((r) => r.requestId === id)).toBe(true); // no worker, still open
    h.app.startWorker();
    await waitFor('rule removed after the worker came back', async () => (await h.rules()).every((r) => r.requestId !== id), 10_000);
    expect((await h.get(id))!.status).toBe('expired');
  });
});

describe('list, status, help', () => {
  it('list shows the caller\'s own requests; status hides requests the caller may not see', async () => {
    const id = await pending('rdp vm1 1h from 203.0.113.17');
    expect(requestList(await h.cmd(ALICE, 'list'))).toContain(`${id}:pending`);
    expect(requestList(await h.cmd(BOB, 'list pending'))).toContain(`${id}:pending`); // approver sees it
    expect(requestList(await h.cmd(MALLORY, 'list all'))).not.toContain(`${id}:pending`);
    expect((await h.cmd(MALLORY, `status ${id}`)).reply).toMatchObject({ kind: 'rejected', code: 'not_found' });
    expect((await h.cmd(ERIN, `status ${id}`)).text).toContain('is waiting for approval');
    await h.cmd(ALICE, `revoke ${id}`);
    expect((await h.get(id))!.status).toBe('cancelled');
  });

  it('help gives examples from the caller\'s own targets', async () => {
    const { text } = await h.cmd(ALICE, 'help');
    expect(text).toContain('jit rdp vm1 1h');
    expect(text).toContain('extend <id> <duration>');
    const stranger = await h.cmd(MALLORY, 'help');
    expect(stranger.text).toContain('you cannot request any target yet');
  });

  it('GET /healthz (liveness) and GET /readyz (Redis, worker, network) answer', async () => {
    const res = await fetch(`${h.app.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', worker: 'running', network: 'simulated' });
    const ready = await fetch(`${h.app.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', redis: 'up', worker: 'running', network: 'ok' });
  });
});
