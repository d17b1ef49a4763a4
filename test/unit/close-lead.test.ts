// The Azure gate's close-time estimate (src/adapters/azure/latency.ts) and the order its NSG
// writer takes queued changes in (closes first: `prioritize` in src/adapters/azure/gate.ts).
import { describe, expect, it } from 'vitest';
import { WriteLatency, quantile } from '../../src/adapters/azure/latency.js';
import { prioritize } from '../../src/adapters/azure/gate.js';

const NSG = '/subscriptions/s/resourcegroups/rg/providers/microsoft.network/networksecuritygroups/a';
const NSG2 = '/subscriptions/s/resourcegroups/rg/providers/microsoft.network/networksecuritygroups/b';
const POLICY = '/subscriptions/s/resourcegroups/hub/providers/microsoft.network/firewallpolicies/p';
const kind = (key: string) => (key.includes('/networksecuritygroups/') ? 'nsg' : 'firewall');

describe('close-time estimate', () => {
  it('p90 of the recent operations, times the operations a close makes plus one in flight', () => {
    const l = new WriteLatency();
    for (const ms of [5000, 5100, 5200, 5050, 5300, 5150, 5000, 5100, 5250, 9000]) l.record(NSG, 'op', ms);
    expect(quantile([5000, 5100, 5200, 5050, 5300, 5150, 5000, 5100, 5250, 9000], 0.9)).toBe(5300);
    // One rule: its DELETE, and one operation that may be running on the NSG when the close arrives.
    expect(l.estimate(NSG, 1)).toBe(2 * 5300);
    // Two rules on that NSG (two ports): two DELETEs in a row, plus one in flight.
    expect(l.estimate(NSG, 2)).toBe(3 * 5300);
    // One outlier in ten is not the estimate; the window moves on.
    for (let i = 0; i < 20; i++) l.record(NSG, 'op', 1000);
    expect(l.estimate(NSG, 1)).toBe(2000);
  });

  it('what closes took lately (queued to Succeeded) wins when it is more: closes queued behind other closes', () => {
    const l = new WriteLatency();
    for (let i = 0; i < 5; i++) l.record(NSG, 'op', 100);
    for (const ms of [150, 180, 900]) l.record(NSG, 'close', ms);
    expect(l.estimate(NSG, 1)).toBe(900);
    // Until a resource has three close samples, its opens' times count too.
    const m = new WriteLatency();
    m.record(NSG, 'write', 4000);
    m.record(NSG, 'close', 100);
    expect(m.estimate(NSG, 1)).toBe(4000);
  });

  it('closes of other grants due shortly before this expiry are queued ahead: one operation each, looked for as far back as the lead reaches', () => {
    const l = new WriteLatency();
    l.record(NSG, 'op', 1000);
    // Other grants' expiries, ms before this one's: one at 1.5 s before, one at 2.5 s, one at 10 s.
    const others = [1500, 2500, 10_000];
    const ahead = (lead: number) => others.filter((d) => d <= lead).length;
    // 2 s covers the first (3 s), 3 s the second (4 s), 4 s no more: the one 10 s before is closed by then.
    expect(l.estimate(NSG, 1, ahead)).toBe(4000);
    expect(l.estimate(NSG, 1, () => 0)).toBe(2000);
  });

  it('the slowest resource of the grant counts; one without samples takes the highest of its kind; none at all: 0', () => {
    const l = new WriteLatency();
    expect(l.lead([{ key: NSG, ops: 1 }], kind)).toBe(0);
    l.record(NSG, 'op', 1000);
    l.record(POLICY, 'op', 60_000);
    expect(l.lead([{ key: NSG, ops: 1 }], kind)).toBe(2000);
    // NSG2 has no samples: an NSG's estimate stands in (not the firewall policy's minutes).
    expect(l.lead([{ key: NSG2, ops: 1 }], kind)).toBe(2000);
    expect(l.lead([{ key: NSG, ops: 1 }, { key: POLICY, ops: 1 }], kind)).toBe(120_000);
  });
});

describe('the NSG writer\'s order', () => {
  const c = (name: string, urgent: boolean, requests: string[], deadline = Infinity) => ({ name, urgent, requests, deadline });
  it('closes go ahead of opens and expiry updates, in their own order', () => {
    const order = prioritize([c('open1', false, ['r1']), c('open2', false, ['r2']), c('close3', true, ['r3'], 100), c('update4', false, ['r4']), c('close5', true, ['r5'], 100)]);
    expect(order.map((x) => x.name)).toEqual(['close3', 'close5', 'open1', 'open2', 'update4']);
  });

  it('closes are taken earliest expiry first: one that started early (many neighbours) does not hold up one due sooner', () => {
    const order = prioritize([c('open1', false, ['r1']), c('close-at-300', true, ['r2'], 300), c('close-at-100', true, ['r3'], 100), c('close-at-200', true, ['r4'], 200), c('sweep-of-expired', true, ['r5', 'r6'], 50)]);
    expect(order.map((x) => x.name)).toEqual(['sweep-of-expired', 'close-at-100', 'close-at-200', 'close-at-300', 'open1']);
  });

  it('a close never goes ahead of a change queued before it for the same request (it would find nothing, and the open would then stay)', () => {
    const order = prioritize([c('open1', false, ['r1']), c('open2', false, ['r2']), c('close2', true, ['r2'], 100), c('close9', true, ['r9', 'r1'], 100)]);
    // close9 waits for open1 (its r1), and stays behind close2: closes keep their order.
    expect(order.map((x) => x.name)).toEqual(['open1', 'open2', 'close2', 'close9']);
  });
});
