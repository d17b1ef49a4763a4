// Use cases on the in-memory fakes (test/fakes): what a person sees and is refused, without Redis.
import { describe, expect, it } from 'vitest';
import { fakeWorld, idOf } from '../fakes/service.js';
import { p } from '../fixtures/ids.js';
import type { PrincipalId } from '../../src/core/ids.js';

describe('use cases on the fakes', () => {
  it('the audit report: a requester reads their own requests\' events, a reader the target\'s, an outsider nothing', async () => {
    const w = fakeWorld();
    const mine = idOf(await w.cmd('alice@contoso.com', 'ssh dev1 1h from 203.0.113.5'));
    const bobs = idOf(await w.cmd('bob@contoso.com', 'rdp vm1 1h from 203.0.113.6'));
    const ids = async (actor: PrincipalId) => new Set((await w.svc.auditRows(actor, { since: 0 })).rows.map((r) => r.requestId));
    expect(await ids(p('alice@contoso.com'))).toEqual(new Set([mine]));
    expect(await ids(p('erin@contoso.com'))).toEqual(new Set([mine, bobs])); // JIT Reader on the subscription
    expect(await ids(p('mallory@contoso.com'))).toEqual(new Set());
  });

  it('the cap on requests in flight per person refuses the next one and stores nothing', async () => {
    const w = fakeWorld({ maxActivePerPrincipal: 2 });
    await w.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.5');
    await w.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.6');
    const third = await w.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.7');
    expect(third.kind).toBe('rejected');
    expect(JSON.stringify(third)).toMatch(/limit per person/);
    expect(await w.store.list({ requester: p('alice@contoso.com') })).toHaveLength(2);
  });

  it('an unapproved request times out by its job; the requester is told; nothing opened', async () => {
    const w = fakeWorld();
    const id = idOf(await w.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.5'));
    await w.scheduler.runUntil(w.svc, w.clock.now() + 2 * 3_600_000);
    expect((await w.get(id)).status).toBe('timed_out');
    expect(w.notifier.kinds(id)).toEqual(['approval_needed', 'timed_out']);
    expect(w.gate.rulesOf(id)).toEqual([]);
  });
});
