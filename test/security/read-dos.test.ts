// Issue 17, item 6: "read DoS by any principal". `audit` read up to 100,000 stream entries and
// did one GET per request id before filtering, for anyone, as often as they liked. Now: a caller
// with no role gets an empty answer at once (not one command on the audit keys, not even the
// rate limiter); reads are rate-limited per principal (JIT_READ_RATE, JIT_AUDIT_RATE); and the
// read walks the per-target / per-request indexes, so what Redis does follows what the caller may
// see (every XRANGE reads one entry; none scans the stream).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localHeaders, requestOf, startHarness, type Harness } from '../integration/harness.js';
import { API_TOKENS, api, redisCommandsDuring } from './lib.js';
import { p } from '../fixtures/ids.js';

const opened: Harness[] = [];
afterAll(async () => {
  for (const h of opened) await h.close();
});
const start = async (env: Record<string, string> = {}) => {
  const h = await startHarness({ JIT_API_TOKENS: API_TOKENS, ...env });
  opened.push(h);
  return h;
};

/** `n` requests by alice on vm1, denied by bob (2 events each); `m` opened by dave on dev1. */
async function populate(h: Harness, n: number, m: number): Promise<{ vm1: string[]; dev1: string[] }> {
  const vm1: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = requestOf((await h.cmd('alice@contoso.com', `rdp vm1 1h from 203.0.113.${i + 1}`)).reply).id;
    await h.cmd('bob@contoso.com', `deny ${id} reason "bench"`);
    vm1.push(id);
  }
  const dev1: string[] = [];
  for (let i = 0; i < m; i++) dev1.push(requestOf((await h.cmd('dave@contoso.com', `ssh dev1 30m from 198.51.100.${i + 1}`)).reply).id);
  return { vm1, dev1 };
}

/**
 * What a read on mallory's behalf would send: reads of the log or the indexes (XRANGE, ZRANGE …,
 * LRANGE) or anything naming her (the rate limiter's counter). Transitions other work commits in
 * the background (EVALSHA of the store's scripts) are not reads and are left out.
 */
const READS = new Set(['xrange', 'xrevrange', 'xread', 'zrange', 'zrevrange', 'zrangebyscore', 'zrevrangebyscore', 'lrange', 'hmget', 'get', 'mget']);
const readsFor = (commands: string[][], who = 'mallory') =>
  commands.filter((c) => c.some((a) => a.includes(who)) || (READS.has((c[0] ?? '').toLowerCase()) && !c.some((a) => a.endsWith(':reconciler:lease'))));
/** A read of one request's record (the reconciler reads those of open grants in the background): no index, no log. */
const recordRead = (c: string[]) => ['hmget', 'get'].includes((c[0] ?? '').toLowerCase()) && (c[1] ?? '').includes(':req:');
const auditKeys = (_prefix: string, commands: string[][]) => readsFor(commands).filter((c) => !recordRead(c));

describe('audit reads by a principal with no role', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await start();
    await populate(h, 30, 3);
  });

  it('answer empty at once, over chat and REST (JSON and CSV), without one Redis command on the audit log', async () => {
    const { result, commands } = await redisCommandsDuring(h.prefix, async () =>
      Promise.all([
        h.cmd('mallory@contoso.com', 'audit'),
        h.cmd('mallory@contoso.com', 'audit vm1 since 7d'),
        api(h, 'mallory', 'GET', '/audit?since=7d'),
        api(h, 'mallory', 'GET', '/audit.csv?target=vm1'),
        // The attack of the report: 8 in parallel.
        ...Array.from({ length: 8 }, () => api(h, 'mallory', 'GET', '/audit')),
      ]),
    );
    const [chat, chatVm, json, csv, ...parallel] = result;
    expect(chat.reply).toMatchObject({ kind: 'audit', rows: [], truncated: false });
    expect(chatVm.reply).toMatchObject({ kind: 'audit', rows: [], truncated: false });
    expect(json.json).toEqual({ rows: [], truncated: false });
    expect(csv.raw.trim().split('\r\n')).toHaveLength(1); // the header only
    for (const p of parallel) expect(p.json).toEqual({ rows: [], truncated: false });
    expect(auditKeys(h.prefix, commands)).toEqual([]);
  });

  it('list, status and vms of a principal with no role touch nothing either', async () => {
    const { commands } = await redisCommandsDuring(h.prefix, async () => {
      await h.cmd('mallory@contoso.com', 'list all');
      await h.cmd('mallory@contoso.com', 'status r7k2m9q4xw');
      await h.cmd('mallory@contoso.com', 'vms');
      await api(h, 'mallory', 'GET', '/requests?limit=200');
    });
    // No index walked, no request read, no counter: nothing at all on her behalf (the reconciler's
    // own reads of open grants' records may run meanwhile; they name no index).
    expect(readsFor(commands).filter((c) => !recordRead(c) || c.some((a) => a.includes(':idx:') || a.includes(':ids:')))).toEqual([]);
  });
});

describe('audit reads follow what the caller may see', () => {
  let h: Harness;
  let ids: { vm1: string[]; dev1: string[] };
  beforeAll(async () => {
    h = await start();
    ids = await populate(h, 40, 4);
  });

  it('a JIT Admin reads every event, each with one single-entry XRANGE: no scan of the stream', async () => {
    const { result, commands } = await redisCommandsDuring(h.prefix, () => h.cmd('dave@contoso.com', 'audit'));
    const rows = result.reply.kind === 'audit' ? result.reply.rows : [];
    expect(rows.filter((r) => ids.vm1.includes(r.requestId))).toHaveLength(2 * ids.vm1.length);
    const xranges = commands.filter((c) => c[0]?.toLowerCase() === 'xrange');
    // One per event read, each for exactly one id (start = end), never `-`..`+` over the log.
    expect(xranges.every((c) => c[2] === c[3] && c[2] !== '-')).toBe(true);
    expect(xranges.length).toBe(rows.length);
  });

  it('a requester reads only her own requests: the read costs what she may see, not the log', async () => {
    // bob's requests on vm1 are not alice's to see (JIT Requester has no read).
    for (let i = 0; i < 5; i++) await h.cmd('bob@contoso.com', `rdp vm1 1h from 198.51.100.${i + 1}`);
    const { result, commands } = await redisCommandsDuring(h.prefix, () => h.cmd('alice@contoso.com', 'audit'));
    const rows = result.reply.kind === 'audit' ? result.reply.rows : [];
    expect(rows.length).toBe(2 * ids.vm1.length);
    expect(rows.every((r) => r.caller === 'alice@contoso.com' || ids.vm1.includes(r.requestId))).toBe(true);
    const xranges = commands.filter((c) => c[0]?.toLowerCase() === 'xrange');
    expect(xranges.length).toBe(rows.length);
    // No per-target walk of vm1 (she does not read it): only her own requests' event lists.
    expect(commands.filter((c) => c[0]?.toLowerCase() === 'lrange' && (c[1] ?? '').includes(':audit:bytarget:'))).toEqual([]);
  });

  it('events written before the per-target index existed are indexed once, then read the same way', async () => {
    // A stream from before any target index: drop the target indexes (lists, and sorted sets of the
    // version before) and their markers, as before the upgrade.
    const { Redis } = await import('ioredis');
    const r = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    try {
      const keys = [...(await r.keys(`${h.prefix}:audit:target:*`)), ...(await r.keys(`${h.prefix}:audit:bytarget:*`))];
      expect(keys.length).toBeGreaterThan(0);
      await r.del(...keys, `${h.prefix}:audit:indexed:v1`, `${h.prefix}:audit:indexed:v2`);
    } finally {
      r.disconnect();
    }
    // A fresh process (a new audit log object) rebuilds the index on its first read.
    const h2 = await start({ JIT_KEY_PREFIX: h.prefix, JIT_WORKER: 'false' });
    const rows = (await h2.app.service.auditRows(p('erin@contoso.com'), { since: 0 })).rows;
    expect(rows.filter((x) => ids.vm1.includes(x.requestId))).toHaveLength(2 * ids.vm1.length);
    expect(rows.filter((x) => ids.dev1.includes(x.requestId)).length).toBeGreaterThanOrEqual(4 * ids.dev1.length);
  });
});

describe('reads are rate-limited per principal', () => {
  it('the 4th audit in the window is refused (429 over REST) with when to retry; other principals are not affected', async () => {
    const h = await start({ JIT_AUDIT_RATE: '3/1m', JIT_READ_RATE: '5/1m' });
    await populate(h, 2, 0);
    for (let i = 0; i < 3; i++) expect((await api(h, 'erin', 'GET', '/audit')).status).toBe(200);
    const fourth = await api(h, 'erin', 'GET', '/audit.csv');
    expect(fourth.status).toBe(429);
    expect(String(fourth.json.error)).toMatch(/too many audit reads: at most 3 per 1m; try again in (\d+s|1m)/);
    expect((await h.cmd('erin@contoso.com', 'audit')).reply).toMatchObject({ kind: 'rejected', code: 'rate_limited' });
    expect((await api(h, 'dave', 'GET', '/audit')).status).toBe(200);
    // The local channel's CSV download counts against the same limit and answers 429 too.
    const csv = await fetch(`${h.app.url}/api/local/audit.csv?as=erin@contoso.com`, { headers: localHeaders(h.app) });
    expect(csv.status).toBe(429);
    expect(((await csv.json()) as { error: string }).error).toMatch(/too many audit reads/);

    // list / status / vms / GET /requests share JIT_READ_RATE (5 here).
    const id = requestOf((await h.cmd('alice@contoso.com', 'rdp vm1 1h from 203.0.113.50')).reply).id;
    const reads = [() => h.cmd('erin@contoso.com', 'list all'), () => h.cmd('erin@contoso.com', `status ${id}`), () => h.cmd('erin@contoso.com', 'vms'), () => api(h, 'erin', 'GET', '/requests'), () => api(h, 'erin', 'GET', `/requests/${id}`)];
    for (const read of reads) await read();
    expect((await api(h, 'erin', 'GET', '/requests')).status).toBe(429);
    expect((await h.cmd('erin@contoso.com', 'list all')).reply).toMatchObject({ kind: 'rejected', code: 'rate_limited' });
    expect((await api(h, 'bob', 'GET', `/requests/${id}`)).status).toBe(200);
  });

  it('configuration: sensible defaults, off, and bad values named', async () => {
    const { loadConfig } = await import('../../src/config/env.js');
    const c = loadConfig({});
    expect(c.JIT_READ_RATE).toEqual({ count: 120, windowMs: 60_000 });
    expect(c.JIT_AUDIT_RATE).toEqual({ count: 20, windowMs: 60_000 });
    expect(loadConfig({ JIT_AUDIT_RATE: 'off' }).JIT_AUDIT_RATE.count).toBe(0);
    expect(() => loadConfig({ JIT_READ_RATE: 'many' })).toThrow(/JIT_READ_RATE: must be <count>\/<duration>/);
  });
});
