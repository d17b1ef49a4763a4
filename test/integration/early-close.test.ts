// Early close: a grant's revocation starts before its expiry by the gate's estimate of how long
// the close takes (NetworkGate.closeLeadMs) plus JIT_CLOSE_LEAD_MARGIN, within JIT_CLOSE_LEAD_MAX
// and half the grant, so the rules are gone BY the expiry. Real Redis and BullMQ; the simulated
// gate with a lead the test sets, and a clock the test moves (the service's clock: the job
// handler is called directly at chosen moments, so nothing here depends on timing).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Clock, CloseTiming, GrantSpec, NetworkGate } from '../../src/app/ports.js';
import { SimulatedGate } from '../../src/adapters/simulated/gate.js';
import { loadConfig } from '../../src/config/env.js';
import type { AppliedRule, AuditEvent, Target } from '../../src/core/types.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requestOf, startHarness, waitFor, type Harness } from './harness.js';

const MARGIN = 500;
const CAP = 3000;

/** The simulated gate, with a close-time estimate the test sets (the Azure gate measures its own). */
class LeadGate implements NetworkGate {
  lead = 0;
  asked: AppliedRule[][] = [];
  /** What each close was told of its timing, and, when set, a wait before it writes (the Azure gate's hold). */
  timings: Array<CloseTiming | undefined> = [];
  hold: Promise<void> | undefined;
  constructor(private readonly inner: SimulatedGate) {}
  open(g: GrantSpec) {
    return this.inner.open(g);
  }
  async close(id: string, t: Target, written?: AppliedRule[], when?: CloseTiming) {
    this.timings.push(when);
    if (this.hold) await this.hold;
    return this.inner.close(id, t, written);
  }
  list() {
    return this.inner.list();
  }
  remove(rules: AppliedRule[]) {
    return this.inner.remove(rules);
  }
  updateExpiry(id: string, t: Target, at: number) {
    return this.inner.updateExpiry(id, t, at);
  }
  closeLeadMs(rules: AppliedRule[]): number {
    this.asked.push(rules);
    return this.lead;
  }
}

let h: Harness;
let gate: LeadGate;
/** The service's clock: real time plus an offset the test moves. */
const clock: Clock & { offset: number } = { offset: 0, now: () => Date.now() + clock.offset };

beforeAll(async () => {
  gate = new LeadGate(await SimulatedGate.open({ file: join(mkdtempSync(join(tmpdir(), 'jit-early-')), 'net.json') }));
  // The reconciler would read the moved clock too: it sweeps once, at start.
  h = await startHarness({ JIT_CLOSE_LEAD_MAX: `${CAP / 1000}s`, JIT_CLOSE_LEAD_MARGIN: `${MARGIN}ms`, JIT_RECONCILE_INTERVAL: '1d' }, { gate, clock });
});
afterEach(() => {
  clock.offset = 0;
});
afterAll(async () => h?.close());

/** dev1 needs no approval: the grant is active when the request returns. */
async function active(duration: string, from: string) {
  clock.offset = 0;
  const req = requestOf((await h.cmd('alice@contoso.com', `ssh dev1 ${duration} from ${from}`)).reply);
  expect(req.status).toBe('active');
  return req;
}
const rulesOf = async (id: string) => (await h.rules()).filter((r) => r.requestId === id);
const events = async (id: string, action: AuditEvent['action']) => (await h.audit(id)).filter((e) => e.action === action);

describe('early close: the revocation job', () => {
  it('is scheduled the gate\'s close time plus the margin before the expiry, asked with the rules as written', async () => {
    gate.lead = 2000;
    const req = await active('1h', '198.51.100.1');
    expect(await h.app.scheduler.expiryDueAt(req.id)).toBe(req.expiresAt! - 2000 - MARGIN);
    expect(gate.asked.at(-1)!.map((r) => r.name)).toEqual(req.rules.map((r) => r.name));
  });

  it('never starts more than JIT_CLOSE_LEAD_MAX before the expiry, whatever the estimate; nor more than half the grant', async () => {
    gate.lead = 600_000;
    const req = await active('1h', '198.51.100.2');
    expect(await h.app.scheduler.expiryDueAt(req.id)).toBe(req.expiresAt! - CAP);
    // A job firing before that (a moment before the cap, past the slack for an early timer) is sent back to it.
    clock.offset = req.expiresAt! - CAP - 300 - Date.now();
    expect(await h.app.service.expire(req.id)).toEqual({ retryAt: req.expiresAt! - CAP });
    expect((await h.get(req.id))!.status).toBe('active');
    expect(await rulesOf(req.id)).toHaveLength(1);

    gate.lead = 2000;
    const short = await active('4s', '198.51.100.3');
    expect(await h.app.scheduler.expiryDueAt(short.id)).toBe(short.expiresAt! - 2000);
  });

  it('a gate without an estimate (the simulated one) closes at the expiry, as before', async () => {
    gate.lead = 0;
    const req = await active('1h', '198.51.100.4');
    expect(await h.app.scheduler.expiryDueAt(req.id)).toBe(req.expiresAt);
    clock.offset = req.expiresAt! - 1000 - Date.now();
    expect(await h.app.service.expire(req.id)).toEqual({ retryAt: req.expiresAt });
  });

  it('an extension moves the early close; the job that fires at the old time reschedules to the new one', async () => {
    gate.lead = 2000;
    const req = await active('1h', '198.51.100.5');
    const oldDue = req.expiresAt! - 2000 - MARGIN;
    const extended = requestOf((await h.cmd('dave@contoso.com', `extend ${req.id} 30m`)).reply);
    expect(extended.expiresAt).toBe(req.expiresAt! + 30 * 60_000);
    const newDue = extended.expiresAt! - 2000 - MARGIN;
    expect(await h.app.scheduler.expiryDueAt(req.id)).toBe(newDue);
    // A job already firing at the old time (or the one a crash left there) is sent to the new one.
    clock.offset = oldDue + 10 - Date.now();
    expect(await h.app.service.expire(req.id)).toEqual({ retryAt: newDue });
    expect((await h.get(req.id))!.status).toBe('active');
    expect(await rulesOf(req.id)).toHaveLength(1);
  });

  it('the reconciler re-plans a revocation whose lead grew since (grants added on its NSG expiring just before it): earlier, never later', async () => {
    gate.lead = 1000;
    const req = await active('1h', '198.51.100.9');
    expect(await h.app.scheduler.expiryDueAt(req.id)).toBe(req.expiresAt! - 1000 - MARGIN);
    gate.lead = 2000;
    await h.app.service.reconcile(2 * 3600_000);
    expect(await h.app.scheduler.expiryDueAt(req.id)).toBe(req.expiresAt! - 2000 - MARGIN);
    // Outside the window it looks at, nothing moves.
    gate.lead = 2400;
    await h.app.service.reconcile(60_000);
    expect(await h.app.scheduler.expiryDueAt(req.id)).toBe(req.expiresAt! - 2000 - MARGIN);
    // A lead that shrank leaves the job where it is (sent back when it fires, if it fires too early).
    gate.lead = 100;
    await h.app.service.reconcile(2 * 3600_000);
    expect(await h.app.scheduler.expiryDueAt(req.id)).toBe(req.expiresAt! - 2000 - MARGIN);
    expect((await h.get(req.id))!.status).toBe('active');
  });

  it('a job within the lead closes the grant; the audit says how early it started and when the network confirmed it', async () => {
    gate.lead = 2000;
    const req = await active('1h', '198.51.100.6');
    const lead = 2000 + MARGIN;
    // The job fires 100 ms after it is due, 2.4 s before the expiry.
    clock.offset = req.expiresAt! - lead + 100 - Date.now();
    expect(await h.app.service.expire(req.id)).toBeUndefined();
    expect((await h.get(req.id))!.status).toBe('expired');
    expect(await rulesOf(req.id)).toEqual([]);

    const [expired] = await events(req.id, 'grant.expired');
    expect(expired!.details.lateMs).toBe(0);
    expect(expired!.details.leadMs).toBeGreaterThan(0);
    expect(expired!.details.leadMs).toBeLessThanOrEqual(lead - 100);
    const [removed] = await events(req.id, 'rule.removed');
    const d = removed!.details;
    expect(d).toMatchObject({ rule: req.rules[0]!.name, expiresAt: new Date(req.expiresAt!).toISOString() });
    // Started no earlier than the lead allows, and before the expiry.
    expect(d.leadMs).toBeGreaterThan(0);
    expect(d.leadMs).toBeLessThanOrEqual(lead - 100);
    // Confirmed when the gate's close returned; lateMs is that against the expiry (negative: before it).
    const confirmedAt = Date.parse(String(d.confirmedAt));
    expect(removed!.time).toBe(confirmedAt);
    expect(d.lateMs).toBe(confirmedAt - req.expiresAt!);
    expect(d.lateMs).toBeLessThan(0);
  });

  it('the close of an expiry is told the expiry to meet (the gate may hold its write); the reconciler leaves it to the revocation until the expiry', async () => {
    gate.lead = 2000;
    const req = await active('1h', '198.51.100.16');
    clock.offset = req.expiresAt! - 2000 - Date.now();
    let release!: () => void;
    gate.hold = new Promise((r) => (release = r));
    gate.timings = [];
    const expiring = h.app.service.expire(req.id);
    await waitFor('the close is held', async () => gate.timings.length === 1 && (await h.get(req.id))!.status === 'expired');
    expect(gate.timings).toEqual([{ by: req.expiresAt, marginMs: MARGIN }]);
    // Expired early, its rule still there until the held write: not the reconciler's before the expiry.
    await h.app.service.reconcile();
    expect(await rulesOf(req.id)).toHaveLength(1);
    gate.hold = undefined;
    release();
    await expiring;
    expect(await rulesOf(req.id)).toEqual([]);
    const [removed] = await events(req.id, 'rule.removed');
    expect(removed!.details.expiresAt).toBe(new Date(req.expiresAt!).toISOString());
    expect(removed!.actor).toBe('system');
  });

  it('a rule of an expired grant still there after its expiry is the reconciler\'s', async () => {
    gate.lead = 0;
    const req = await active('1h', '198.51.100.17');
    clock.offset = req.expiresAt! + 1000 - Date.now();
    let release!: () => void;
    gate.hold = new Promise((r) => (release = r));
    const expiring = h.app.service.expire(req.id);
    await waitFor('expired', async () => (await h.get(req.id))!.status === 'expired');
    gate.hold = undefined;
    expect(await rulesOf(req.id)).toHaveLength(1);
    expect(await h.app.service.reconcile()).toBeGreaterThanOrEqual(1);
    expect(await rulesOf(req.id)).toEqual([]);
    release();
    await expiring;
  });

  it('revoked grants are closed at once, without expiry timing in their audit', async () => {
    gate.lead = 2000;
    const req = await active('1h', '198.51.100.7');
    await h.cmd('alice@contoso.com', `revoke ${req.id}`);
    const [removed] = await events(req.id, 'rule.removed');
    expect(removed!.details.leadMs).toBeUndefined();
    expect(removed!.details.confirmedAt).toBeUndefined();
  });

  it('end to end: the BullMQ job fires at the early time and closes the grant, never earlier than its lead', async () => {
    gate.lead = 1000;
    const req = await active('4s', '198.51.100.8');
    const lead = Math.min(1000 + MARGIN, 2000);
    expect(await h.app.scheduler.expiryDueAt(req.id)).toBe(req.expiresAt! - lead);
    await waitFor('closed', async () => (await h.get(req.id))!.status === 'expired' && (await rulesOf(req.id)).length === 0, 15_000);
    const [removed] = await events(req.id, 'rule.removed');
    expect(Number(removed!.details.leadMs)).toBeLessThanOrEqual(lead);
  });
});

describe('early close: configuration', () => {
  it('defaults (30 s cap, 1 s margin), 0 turns it off, ms accepted, bad or too large values named', () => {
    const c = loadConfig({});
    expect(c.JIT_CLOSE_LEAD_MAX).toBe(30_000);
    expect(c.JIT_CLOSE_LEAD_MARGIN).toBe(1000);
    expect(loadConfig({ JIT_CLOSE_LEAD_MAX: '0' }).JIT_CLOSE_LEAD_MAX).toBe(0);
    expect(loadConfig({ JIT_CLOSE_LEAD_MARGIN: '250ms' }).JIT_CLOSE_LEAD_MARGIN).toBe(250);
    expect(() => loadConfig({ JIT_CLOSE_LEAD_MAX: 'soon' })).toThrow(/JIT_CLOSE_LEAD_MAX: "soon" is not a duration/);
    expect(() => loadConfig({ JIT_CLOSE_LEAD_MAX: '11m' })).toThrow(/JIT_CLOSE_LEAD_MAX: at most 10m/);
    expect(() => loadConfig({ JIT_CLOSE_LEAD_MARGIN: '2m' })).toThrow(/JIT_CLOSE_LEAD_MARGIN: at most 1m/);
  });
});
