// Races a security team asks about: many approvals of one request at once; revoke, extend and the
// expiry job at the same instant. Real Redis, BullMQ and the simulated gate: what only they show
// (the Lua compare-and-set under real concurrency, delayed jobs, a flushed Redis). Each race forced
// into one exact interleaving, without Redis or sleeps: test/unit/races.test.ts.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedGate } from '../../src/adapters/simulated/gate.js';
import type { GrantSpec, NetworkGate } from '../../src/app/ports.js';
import type { Target } from '../../src/core/types.js';
import { requestOf, sleep, startHarness, waitFor, type Harness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

describe('races', () => {
  it('50 concurrent approvals of one request: exactly one decision, one approval event, one rule', async () => {
    const id = requestOf((await h.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.40')).reply).id;
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => h.cmd(i % 2 ? 'bob@contoso.com' : 'carol@contoso.com', `approve ${id}`)));
    const accepted = replies.filter((r) => r.reply.kind === 'decided');
    expect(accepted).toHaveLength(1);
    for (const r of replies.filter((x) => x.reply.kind !== 'decided')) expect(r.text).toMatch(/already|approved|active/);
    const req = (await h.get(id))!;
    expect(req.status).toBe('active');
    expect(req.decisions).toHaveLength(1);
    const audit = (await h.audit(id)).map((e) => e.action);
    expect(audit.filter((a) => a === 'request.approved')).toHaveLength(1);
    expect(audit.filter((a) => a === 'grant.activated')).toHaveLength(1);
    expect((await h.rules()).filter((r) => r.requestId === id)).toHaveLength(1);
    await h.cmd('alice@contoso.com', `revoke ${id}`);
  });

  it('revoke racing extend racing the expiry job: one final outcome, one terminal audit event, nothing left open', async () => {
    for (let round = 0; round < 4; round++) {
      const id = requestOf((await h.cmd('alice@contoso.com', `rdp vm1 2s from 203.0.113.${50 + round}`)).reply).id;
      await h.cmd('bob@contoso.com', `approve ${id}`);
      const active = (await h.get(id))!;
      await sleep(Math.max(0, active.expiresAt! - Date.now()) + round * 30);
      await Promise.allSettled([h.cmd('alice@contoso.com', `revoke ${id}`), h.cmd('dave@contoso.com', `extend ${id} 30m`)]);
      // If the extension won, close it now; either way it must end closed.
      const now = (await h.get(id))!;
      if (now.status === 'active') await h.cmd('alice@contoso.com', `revoke ${id}`);
      const final = await waitFor('final', async () => {
        const r = (await h.get(id))!;
        return r.status === 'expired' || r.status === 'revoked' ? r : null;
      });
      const terminal = (await h.audit(id)).filter((e) => e.action === 'grant.expired' || e.action === 'grant.revoked');
      expect(terminal).toHaveLength(1);
      expect(terminal[0]!.action).toBe(final.status === 'expired' ? 'grant.expired' : 'grant.revoked');
      expect((await h.rules()).filter((r) => r.requestId === id)).toEqual([]);
    }
  }, 40_000);
});

describe('Redis loses its data while grants are active', () => {
  it('with every key of the bot flushed, the reconciler still closes the open rules (it needs only the rules) and audits them', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const id = requestOf((await h.cmd('alice@contoso.com', `rdp vm1 1h from 203.0.113.${70 + i}`)).reply).id;
      await h.cmd('bob@contoso.com', `approve ${id}`);
      ids.push(id);
    }
    expect((await h.rules()).filter((r) => ids.includes(r.requestId))).toHaveLength(3);
    // The flush: every request, index, audit entry and BullMQ job of this bot is gone.
    const { deleteKeys } = await import('./harness.js');
    await deleteKeys(h.prefix);
    expect(await h.app.service.get(ids[0]!)).toBeNull();
    const removed = await h.app.service.reconcile();
    expect(removed).toBeGreaterThanOrEqual(3);
    expect((await h.rules()).filter((r) => ids.includes(r.requestId))).toEqual([]);
    const audit = await h.audit(ids[0]);
    expect(audit.map((e) => e.action)).toEqual(['rule.reconciled']);
    expect(audit[0]!.details.status).toBe('unknown');
  });
});

describe('the expiry job fires while the activation is still writing the rule', () => {
  it('a network write slower than the grant: the request still ends in one final state with nothing open (not "active" with no rule)', async () => {
    // A gate whose writes take turns (as ARM's per-NSG queue does) and whose opens take 2.5 s.
    const inner = await SimulatedGate.open({ file: join(mkdtempSync(join(tmpdir(), 'jit-slow-')), 'net.json') });
    let turn: Promise<unknown> = Promise.resolve();
    const inTurn = <T>(fn: () => Promise<T>): Promise<T> => {
      const p = turn.then(fn, fn);
      turn = p.catch(() => undefined);
      return p;
    };
    const slow: NetworkGate = Object.assign(Object.create(inner) as SimulatedGate, {
      open: (g: GrantSpec) => inTurn(async () => (await sleep(2500), inner.open(g))),
      close: (id: string, t: Target) => inTurn(() => inner.close(id, t)),
    });
    const hs = await startHarness({ JIT_RECONCILE_INTERVAL: '1h' }, { gate: slow });
    try {
      const id = requestOf((await hs.cmd('alice@contoso.com', 'rdp vm1 1s from 203.0.113.80')).reply).id;
      await hs.cmd('bob@contoso.com', `approve ${id}`);
      const final = await waitFor('a final state', async () => {
        const r = (await hs.get(id))!;
        return r.status === 'expired' || r.status === 'failed' ? r : null;
      }, 15_000);
      expect(['expired', 'failed']).toContain(final.status);
      expect((await inner.list()).filter((r) => r.requestId === id)).toEqual([]);
      const actions = (await hs.audit(id)).map((e) => e.action);
      expect(actions.filter((a) => a === 'grant.expired' || a === 'grant.failed')).toHaveLength(1);
    } finally {
      await hs.close();
    }
  }, 30_000);
});
