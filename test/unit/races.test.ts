// The races of a grant's life, each forced into one exact interleaving with the in-memory fakes
// and a manual clock (test/fakes): no Redis, no sleeps, milliseconds. Holds pause an operation at
// a named point (a compare-and-set before its version check, a network write before or after it
// writes); the test commits something else meanwhile, then lets it go on.
// The same races against real Redis and BullMQ, timed by sleeps: test/integration/races.test.ts.
import { describe, expect, it } from 'vitest';
import type { Reply } from '../../src/core/reply.js';
import type { AccessRequest } from '../../src/core/types.js';
import { fakeWorld, idOf, type FakeWorld } from '../fakes/service.js';

const HOUR = 3_600_000;
const ALICE = 'alice@contoso.com';
const BOB = 'bob@contoso.com';
const DAVE = 'dave@contoso.com'; // JIT Admin: extends without approval

const terminalEvents = (w: FakeWorld, id: string) => w.audit.actions(id).filter((a) => a === 'grant.expired' || a === 'grant.revoked' || a === 'grant.failed');
const count = (xs: string[], x: string) => xs.filter((a) => a === x).length;

/** alice asks for RDP on vm1 for an hour; bob approves: an active grant with one rule. */
async function activeGrant(w: FakeWorld, from = '203.0.113.40'): Promise<AccessRequest> {
  const id = idOf(await w.cmd(ALICE, `rdp vm1 1h from ${from}`));
  expect((await w.cmd(BOB, `approve ${id}`)).kind).toBe('decided');
  const req = await w.get(id);
  expect(req.status).toBe('active');
  expect(w.gate.rulesOf(id)).toHaveLength(1);
  return req;
}

/** alice's request, pending; `approve()` starts bob's approval without awaiting it. */
async function pendingRequest(w: FakeWorld): Promise<{ id: string; approve: () => Promise<Reply> }> {
  const id = idOf(await w.cmd(ALICE, 'rdp vm1 1h from 203.0.113.41'));
  return { id, approve: () => w.cmd(BOB, `approve ${id}`) };
}

describe('extend vs expiry', () => {
  it('an extension committed just before the revocation job fires: the job sees the later expiry and comes back then; the grant stays open', async () => {
    const w = fakeWorld();
    const req = await activeGrant(w);
    w.clock.set(req.expiresAt!);
    expect((await w.cmd(DAVE, `extend ${req.id} 30m`)).kind).toBe('extended');
    // The job as it was when it fired (at the old time), whatever the scheduler holds now.
    const outcome = await w.svc.expire(req.id);
    expect(outcome).toEqual({ retryAt: req.expiresAt! + 30 * 60_000 });
    expect((await w.get(req.id)).status).toBe('active');
    expect(w.gate.rulesOf(req.id)).toHaveLength(1);
    expect(terminalEvents(w, req.id)).toEqual([]);
    // And at the new expiry the scheduler's job closes it, once.
    await w.scheduler.runUntil(w.svc, req.expiresAt! + HOUR);
    expect((await w.get(req.id)).status).toBe('expired');
    expect(w.gate.rulesOf(req.id)).toEqual([]);
    expect(terminalEvents(w, req.id)).toEqual(['grant.expired']);
  });

  it('an extension that commits between the job\'s read and its compare-and-set wins: the job re-reads, re-decides and reschedules', async () => {
    const w = fakeWorld();
    const req = await activeGrant(w);
    w.clock.set(req.expiresAt!);
    const held = w.store.holds.hold('cas', (next) => (next as AccessRequest).status === 'expired');
    const job = w.svc.expire(req.id);
    await held.reached; // the job read "active, due" and is about to commit "expired"
    expect((await w.cmd(DAVE, `extend ${req.id} 30m`)).kind).toBe('extended');
    held.release();
    expect(await job).toEqual({ retryAt: req.expiresAt! + 30 * 60_000 });
    const now = await w.get(req.id);
    expect(now.status).toBe('active');
    expect(now.expiresAt).toBe(req.expiresAt! + 30 * 60_000);
    expect(w.gate.rulesOf(req.id).map((r) => r.expiresAt)).toEqual([now.expiresAt]);
    expect(w.audit.actions(req.id)).toContain('grant.extended');
    expect(terminalEvents(w, req.id)).toEqual([]);
  });

  it('an extension just after the expiry committed (the rules still closing) is refused and opens nothing', async () => {
    const w = fakeWorld();
    const req = await activeGrant(w);
    const closing = w.gate.holds.hold('close:before', (id) => id === req.id);
    const jobs = w.scheduler.runUntil(w.svc, req.expiresAt!);
    await closing.reached; // "expired" is committed; the rule is still in the network
    expect((await w.get(req.id)).status).toBe('expired');
    const late = await w.cmd(DAVE, `extend ${req.id} 30m`);
    expect(late.kind).toBe('rejected');
    expect(JSON.stringify(late)).toMatch(/only an active grant can be extended/);
    closing.release();
    await jobs;
    expect(w.gate.rulesOf(req.id)).toEqual([]);
    expect(terminalEvents(w, req.id)).toEqual(['grant.expired']);
    expect(w.audit.actions(req.id)).not.toContain('grant.extended');
  });

  it.each([
    ['revoke, extend, expiry job', [0, 1, 2]],
    ['extend, revoke, expiry job', [1, 0, 2]],
    ['expiry job, extend, revoke', [2, 1, 0]],
    ['expiry job, revoke, extend', [2, 0, 1]],
    ['extend, expiry job, revoke', [1, 2, 0]],
    ['revoke, expiry job, extend', [0, 2, 1]],
  ])('revoke, extend and the expiry job at the same instant (%s): one final outcome, one terminal event, nothing open', async (_, order) => {
    const w = fakeWorld();
    const req = await activeGrant(w);
    w.clock.set(req.expiresAt!);
    const ops = [() => w.cmd(ALICE, `revoke ${req.id}`), () => w.cmd(DAVE, `extend ${req.id} 30m`), () => w.svc.expire(req.id)];
    await Promise.allSettled(order.map((i) => ops[i]!()));
    if ((await w.get(req.id)).status === 'active') await w.cmd(ALICE, `revoke ${req.id}`); // the extension won: close it
    await w.scheduler.runUntil(w.svc, req.expiresAt! + 2 * HOUR);
    const final = await w.get(req.id);
    expect(['expired', 'revoked']).toContain(final.status);
    expect(terminalEvents(w, req.id)).toEqual([final.status === 'expired' ? 'grant.expired' : 'grant.revoked']);
    expect(w.gate.rulesOf(req.id)).toEqual([]);
  });
});

describe('reconcile vs activation', () => {
  it('a sweep while a grant\'s rule is written but not yet committed leaves it open; the activation then commits', async () => {
    const w = fakeWorld();
    const { id, approve } = await pendingRequest(w);
    const writing = w.gate.holds.hold('open:after', (rid) => rid === id);
    const approval = approve();
    await writing.reached; // the rule exists; the store still says "approved"
    expect((await w.get(id)).status).toBe('approved');
    expect(w.gate.rulesOf(id)).toHaveLength(1);
    expect(await w.svc.reconcile()).toBe(0);
    writing.release();
    expect((await approval).kind).toBe('decided');
    expect((await w.get(id)).status).toBe('active');
    expect(w.gate.rulesOf(id)).toHaveLength(1);
    expect(w.audit.actions(id)).not.toContain('rule.reconciled');
  });

  it('a sweep that listed the rule while "approved" and reads the request after it committed: still left open', async () => {
    const w = fakeWorld();
    const { id, approve } = await pendingRequest(w);
    const writing = w.gate.holds.hold('open:after', (rid) => rid === id);
    const approval = approve();
    await writing.reached;
    const listed = w.gate.holds.hold('list');
    const sweep = w.svc.reconcile();
    await listed.reached; // the sweep holds a snapshot with the rule
    writing.release();
    await approval;
    listed.release();
    expect(await sweep).toBe(0);
    expect((await w.get(id)).status).toBe('active');
    expect(w.gate.rulesOf(id)).toHaveLength(1);
  });

  it('the network\'s expiry behind the store\'s (an extension whose rule update failed): the sweep moves it, it does not close the grant', async () => {
    const w = fakeWorld();
    const req = await activeGrant(w);
    w.gate.failNext('update');
    expect((await w.cmd(DAVE, `extend ${req.id} 30m`)).kind).toBe('extended');
    expect(w.gate.rulesOf(req.id)[0]!.expiresAt).toBe(req.expiresAt); // the rule still says the old expiry
    w.clock.set(req.expiresAt! + 60_000); // past the rule's expiry, before the grant's
    expect(await w.svc.reconcile()).toBe(0);
    expect(w.gate.rulesOf(req.id).map((r) => r.expiresAt)).toEqual([req.expiresAt! + 30 * 60_000]);
    expect((await w.get(req.id)).status).toBe('active');
  });

  it('the reconciler and the revocation job close the same expired grant at once: one terminal event, nothing open', async () => {
    const w = fakeWorld();
    const req = await activeGrant(w);
    w.clock.set(req.expiresAt! + 1000);
    const removing = w.gate.holds.hold('remove:before');
    const sweep = w.svc.reconcile();
    await removing.reached; // the sweep decided "stale, active": about to remove and expire it
    await w.scheduler.runDue(w.svc); // the job expires and closes it first
    removing.release();
    await sweep;
    expect((await w.get(req.id)).status).toBe('expired');
    expect(terminalEvents(w, req.id)).toEqual(['grant.expired']);
    expect(w.gate.rulesOf(req.id)).toEqual([]);
  });
});

describe('a crash between the network write and the commit', () => {
  /** The rule is written, then the process dies before "active" is committed: its approval never returns. */
  async function crashAfterWrite(w: FakeWorld): Promise<{ id: string; resume: () => void; approval: Promise<Reply> }> {
    const { id, approve } = await pendingRequest(w);
    const writing = w.gate.holds.hold('open:after', (rid) => rid === id);
    const approval = approve();
    await writing.reached;
    return { id, resume: () => writing.release(), approval };
  }

  it('the activation guard job (on another replica) adopts the written rule; the revocation closes it at the expiry', async () => {
    const w = fakeWorld();
    const { id } = await crashAfterWrite(w);
    expect((await w.get(id)).status).toBe('approved');
    const replica = w.restart();
    expect(w.scheduler.job('start', id)).toBeDefined();
    await w.scheduler.runUntil(replica, w.clock.now() + 20_000);
    const active = await w.get(id);
    expect(active.status).toBe('active');
    expect(w.gate.rulesOf(id)).toHaveLength(1); // the same rule (opening is idempotent), not a second one
    await w.scheduler.runUntil(replica, active.expiresAt! + 60_000);
    expect((await w.get(id)).status).toBe('expired');
    expect(w.gate.rulesOf(id)).toEqual([]);
    const actions = w.audit.actions(id);
    expect(count(actions, 'grant.activated')).toBe(1);
    expect(terminalEvents(w, id)).toEqual(['grant.expired']);
  });

  it('with the guard job lost too, the revocation job fails the request and closes the rule; the first process, if it was only slow, loses its commit and closes its own rule', async () => {
    const w = fakeWorld();
    const { id, resume, approval } = await crashAfterWrite(w);
    w.scheduler.drop('start', id);
    const replica = w.restart();
    const due = w.scheduler.job('expire', id)!.at;
    await w.scheduler.runUntil(replica, due + 60_000);
    expect((await w.get(id)).status).toBe('failed');
    expect(w.gate.rulesOf(id)).toEqual([]);
    // The "crashed" activation resumes: its compare-and-set loses to "failed"; it leaves nothing open.
    resume();
    const reply = await approval;
    expect(reply.kind).toBe('rejected');
    expect((await w.get(id)).status).toBe('failed');
    expect(w.gate.rulesOf(id)).toEqual([]);
    expect(terminalEvents(w, id)).toEqual(['grant.failed']);
    expect(w.audit.actions(id)).not.toContain('grant.activated');
  });

  it('with every job lost, the reconciler closes the rule once its own expiry has passed (the store still says "approved")', async () => {
    const w = fakeWorld();
    const { id } = await crashAfterWrite(w);
    w.scheduler.drop('start', id);
    w.scheduler.drop('expire', id);
    const replica = w.restart();
    const ruleExpiry = w.gate.rulesOf(id)[0]!.expiresAt;
    w.clock.set(ruleExpiry - 1000);
    expect(await replica.reconcile()).toBe(0); // not yet: it may still be activating
    w.clock.set(ruleExpiry);
    expect(await replica.reconcile()).toBe(1);
    expect(w.gate.rulesOf(id)).toEqual([]);
    const reconciled = w.audit.events.filter((e) => e.requestId === id && e.action === 'rule.reconciled');
    expect(reconciled.map((e) => e.details.status)).toEqual(['approved']);
  });
});

describe('approval vs the approval timeout', () => {
  it('an approval that commits while the timeout job is about to commit: the approval stands, the job finds it decided', async () => {
    const w = fakeWorld();
    const { id, approve } = await pendingRequest(w);
    const req = await w.get(id);
    w.clock.set(req.approvalExpiresAt);
    const held = w.store.holds.hold('cas', (next) => (next as AccessRequest).status === 'timed_out');
    const job = w.svc.timeoutApproval(id);
    await held.reached;
    expect((await approve()).kind).toBe('decided');
    held.release();
    await job;
    expect((await w.get(id)).status).toBe('active');
    expect(w.gate.rulesOf(id)).toHaveLength(1);
    expect(w.audit.actions(id)).not.toContain('request.timed_out');
  });

  it('an approval just after the timeout committed is refused and opens nothing', async () => {
    const w = fakeWorld();
    const { id, approve } = await pendingRequest(w);
    await w.scheduler.runUntil(w.svc, (await w.get(id)).approvalExpiresAt);
    expect((await w.get(id)).status).toBe('timed_out');
    expect((await approve()).kind).toBe('rejected');
    expect((await w.get(id)).status).toBe('timed_out');
    expect(w.gate.rulesOf(id)).toEqual([]);
    expect(w.audit.actions(id)).not.toContain('request.approved');
  });
});

describe('the races of test/integration/races.test.ts, without Redis', () => {
  it('50 concurrent approvals of one request: exactly one decision, one approval event, one rule', async () => {
    const w = fakeWorld();
    const { id } = await pendingRequest(w);
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => w.cmd(i % 2 ? BOB : 'carol@contoso.com', `approve ${id}`)));
    expect(replies.filter((r) => r.kind === 'decided')).toHaveLength(1);
    for (const r of replies.filter((x) => x.kind !== 'decided')) expect(JSON.stringify(r)).toMatch(/already|approved|active/);
    const req = await w.get(id);
    expect(req.status).toBe('active');
    expect(req.decisions).toHaveLength(1);
    const actions = w.audit.actions(id);
    expect(count(actions, 'request.approved')).toBe(1);
    expect(count(actions, 'grant.activated')).toBe(1);
    expect(w.gate.rulesOf(id)).toHaveLength(1);
  });

  it('with every key flushed, the reconciler still closes the open rules (it needs only the rules) and audits them', async () => {
    const w = fakeWorld();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await activeGrant(w, `203.0.113.${70 + i}`)).id);
    w.store.clear();
    w.audit.events.length = 0;
    expect(await w.svc.get(ids[0]!)).toBeNull();
    expect(await w.svc.reconcile()).toBe(3);
    for (const id of ids) expect(w.gate.rulesOf(id)).toEqual([]);
    expect(w.audit.events.map((e) => [e.action, e.details.status])).toEqual(ids.map(() => ['rule.reconciled', 'unknown']));
  });

  it('the expiry job fires while the activation is still writing the rule: the job waits, the grant commits, then closes; one final state', async () => {
    const w = fakeWorld();
    const writing = w.gate.holds.hold('open:before');
    const asked = w.cmd(ALICE, 'ssh dev1 2s from 203.0.113.80'); // dev1: approved by policy, opens at once
    await writing.reached;
    const [id] = [...w.audit.events.map((e) => e.requestId)];
    w.clock.advance(3000); // past the grant's end: the write is slower than the grant
    await w.scheduler.runDue(w.svc);
    expect((await w.get(id!)).status).toBe('approved'); // the job did not fail it: the activation may still complete
    writing.release();
    await asked;
    await w.scheduler.runUntil(w.svc, w.clock.now() + 60_000);
    expect((await w.get(id!)).status).toBe('expired');
    expect(w.gate.rulesOf(id!)).toEqual([]);
    expect(terminalEvents(w, id!)).toEqual(['grant.expired']);
  });

  it('a network write that lands after the revocation job gave up on it: the job failed the request, the late commit loses and closes the rule it just wrote', async () => {
    const w = fakeWorld();
    const writing = w.gate.holds.hold('open:before');
    const asked = w.cmd(ALICE, 'ssh dev1 2s from 203.0.113.81');
    await writing.reached;
    const [id] = [...w.audit.events.map((e) => e.requestId)];
    w.scheduler.drop('start', id!); // (the guard job's own write would queue behind this one on the real network)
    await w.scheduler.runUntil(w.svc, w.clock.now() + 60_000); // the expiry job looks again each second, then gives up
    expect((await w.get(id!)).status).toBe('failed');
    writing.release(); // the rule is written now, after the job's close
    expect((await asked).kind).toBe('rejected');
    expect((await w.get(id!)).status).toBe('failed');
    expect(w.gate.rulesOf(id!)).toEqual([]);
    expect(terminalEvents(w, id!)).toEqual(['grant.failed']);
  });
});
