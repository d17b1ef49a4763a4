// Abuse limits: a request rate per principal (counted in Redis, so all replicas share it) and caps
// on requests in flight per principal and per target, each with a clear reply that changes nothing.
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/env.js';
import { requestOf, startHarness, type Harness } from './harness.js';
import { p } from '../fixtures/ids.js';

const opened: Harness[] = [];
afterAll(async () => {
  for (const h of opened) await h.close();
});
const start = async (env: Record<string, string>) => {
  const h = await startHarness(env);
  opened.push(h);
  return h;
};
const count = async (h: Harness) => {
  const r = await h.app.service.list(p('dave@contoso.com'), 'all');
  return r.kind === 'list' ? r.requests.length : -1;
};

describe('abuse limits', () => {
  it('configuration: sensible defaults, bad values named', () => {
    const c = loadConfig({});
    expect(c.JIT_REQUEST_RATE).toEqual({ count: 30, windowMs: 60_000 });
    expect(c.JIT_MAX_ACTIVE_PER_PRINCIPAL).toBe(10);
    expect(c.JIT_MAX_ACTIVE_PER_TARGET).toBe(100);
    expect(loadConfig({ JIT_REQUEST_RATE: 'off' }).JIT_REQUEST_RATE.count).toBe(0);
    expect(() => loadConfig({ JIT_REQUEST_RATE: 'lots' })).toThrow(/JIT_REQUEST_RATE: must be <count>\/<duration>/);
    expect(() => loadConfig({ JIT_MAX_ACTIVE_PER_TARGET: '-1' })).toThrow(/JIT_MAX_ACTIVE_PER_TARGET/);
  });

  it('rate: the 4th request within the window is refused with when to retry; nothing is stored', async () => {
    const h = await start({ JIT_REQUEST_RATE: '3/1m' });
    for (let i = 0; i < 3; i++) expect(requestOf((await h.cmd('alice@contoso.com', `rdp vm1 1h from 203.0.113.${i + 1}`)).reply).status).toBe('pending');
    const before = await count(h);
    const fourth = await h.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.9');
    expect(fourth.reply).toMatchObject({ kind: 'rejected', code: 'rate_limited' });
    expect(fourth.text).toMatch(/at most 3 per 1m; try again in (\d+s|1m)/); // a full window left reads "1m"
    expect(await count(h)).toBe(before);
    // Another person is not affected.
    expect(requestOf((await h.cmd('bob@contoso.com', 'rdp vm1 1h from 203.0.113.10')).reply).status).toBe('pending');
  });

  it('per principal: requests waiting or open are capped; closing one makes room', async () => {
    const h = await start({ JIT_MAX_ACTIVE_PER_PRINCIPAL: '2' });
    const a = requestOf((await h.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.1')).reply).id;
    await h.cmd('alice@contoso.com', 'ssh dev1 1h from 203.0.113.2'); // opens at once (dev needs no approval)
    const third = await h.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.3');
    expect(third.reply).toMatchObject({ kind: 'rejected', code: 'limit_reached' });
    expect(third.text).toMatch(/already have 2 requests waiting or open/);
    await h.cmd('alice@contoso.com', `revoke ${a}`);
    expect(requestOf((await h.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.3')).reply).status).toBe('pending');
  });

  it('per target: the cap counts everyone\'s requests on that target', async () => {
    const h = await start({ JIT_MAX_ACTIVE_PER_TARGET: '2' });
    await h.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.1');
    await h.cmd('bob@contoso.com', 'rdp vm1 1h from 203.0.113.2');
    const third = await h.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.3');
    expect(third.text).toMatch(/vm1 already has 2 requests waiting or open/);
    // Other targets are not affected.
    expect(requestOf((await h.cmd('alice@contoso.com', 'ssh db1 30m')).reply).target).toBe('db1');
  });
});
