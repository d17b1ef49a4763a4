// Early close as arithmetic (src/core/grant-timing.ts), then through the use cases on the fakes
// with a manual clock: the revocation starts the gate's close time (plus the margin) before the expiry.
import { describe, expect, it } from 'vitest';
import { closeLeadFor, revocationDueAt } from '../../src/core/grant-timing.js';
import { fakeWorld, idOf } from '../fakes/service.js';

const limits = { closeLeadMarginMs: 1000, closeLeadMaxMs: 30_000, expiryToleranceMs: 250 };
const HOUR = 3_600_000;

describe('close lead', () => {
  it('estimate plus margin, at most the cap and half the grant; 0 without an estimate or an expiry', () => {
    const grant = { durationMs: HOUR, activatedAt: 0, expiresAt: HOUR };
    expect(closeLeadFor(grant, 4000, limits)).toBe(5000);
    expect(closeLeadFor(grant, 60_000, limits)).toBe(30_000);
    expect(closeLeadFor({ durationMs: 10_000, activatedAt: 0, expiresAt: 10_000 }, 60_000, limits)).toBe(5000);
    expect(closeLeadFor(grant, 0, limits)).toBe(0);
    expect(closeLeadFor({ durationMs: HOUR }, 4000, limits)).toBe(0);
    // Extended: the grant's length is the longer one.
    expect(closeLeadFor({ durationMs: 10_000, activatedAt: 0, expiresAt: HOUR }, 60_000, limits)).toBe(30_000);
  });

  it('a job within the lead (or the slack) may close; one earlier is told when it is due', () => {
    const grant = { durationMs: HOUR, activatedAt: 0, expiresAt: HOUR };
    expect(revocationDueAt(grant, 5000, HOUR - 5000, limits)).toBeNull();
    expect(revocationDueAt(grant, 5000, HOUR - 5250, limits)).toBeNull();
    expect(revocationDueAt(grant, 5000, HOUR - 5251, limits)).toBe(HOUR - 5000);
    expect(revocationDueAt(grant, 0, HOUR - 250, limits)).toBeNull();
    expect(revocationDueAt(grant, 0, HOUR - 251, limits)).toBe(HOUR);
    // Never more than the cap early, whatever the slack.
    expect(revocationDueAt(grant, 30_000, HOUR - 30_100, limits)).toBe(HOUR - 30_000);
  });
});

describe('early close through the use cases (fakes, manual clock)', () => {
  it('the revocation is planned the lead before the expiry and closes the grant then; an extension moves it', async () => {
    const w = fakeWorld();
    w.gate.closeLeadEstimateMs = 4000;
    const id = idOf(await w.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.9'));
    await w.cmd('bob@contoso.com', `approve ${id}`);
    const active = await w.get(id);
    expect(w.scheduler.job('expire', id)!.at).toBe(active.expiresAt! - 5000);
    await w.cmd('dave@contoso.com', `extend ${id} 30m`);
    const extended = await w.get(id);
    expect(w.scheduler.job('expire', id)!.at).toBe(extended.expiresAt! - 5000);
    // The old time comes and goes: the grant stays open.
    await w.scheduler.runUntil(w.svc, active.expiresAt!);
    expect((await w.get(id)).status).toBe('active');
    await w.scheduler.runUntil(w.svc, extended.expiresAt! - 5000);
    const closed = await w.get(id);
    expect(closed.status).toBe('expired');
    expect(w.gate.rulesOf(id)).toEqual([]);
    const removed = w.audit.events.find((e) => e.requestId === id && e.action === 'rule.removed')!;
    expect(removed.details.leadMs).toBe(5000);
  });
});
