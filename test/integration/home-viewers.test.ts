// Who keeps a home view (HomeViewers), on the real Redis: an opening is seen at once by the replica
// that noted it and within `maxAgeMs` by another; openings older than the TTL drop out; a Redis
// failure leaves the last copy (or nobody), never an error in the notifier's path.
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { HomeViewers } from '../../src/adapters/chat/home-viewers.js';
import { REDIS_URL, deleteKeys } from './harness.js';
import { p } from '../fixtures/ids.js';

const prefix = `test-homes-${Math.random().toString(36).slice(2, 8)}`;
const redis = new Redis(REDIS_URL);
const DAY = 86_400_000;

afterAll(async () => {
  await deleteKeys(prefix);
  redis.disconnect();
});

describe('home viewers', () => {
  it('one replica sees its own opening at once, another within maxAgeMs; the set expires with its last opening', async () => {
    let now = 1_000_000_000_000;
    const key = `${prefix}:slack:homes`;
    const a = new HomeViewers(redis, key, { ttlMs: 30 * DAY, maxAgeMs: 5000, now: () => now });
    const b = new HomeViewers(redis, key, { ttlMs: 30 * DAY, maxAgeMs: 5000, now: () => now });
    expect([...(await a.viewers())]).toEqual([]);
    expect([...(await b.viewers())]).toEqual([]);
    await a.mark(p('bob@contoso.com'));
    expect((await a.viewers()).has(p('bob@contoso.com'))).toBe(true);
    // b read the set a moment ago: it shows Bob once its copy is older than maxAgeMs.
    expect((await b.viewers()).has(p('bob@contoso.com'))).toBe(false);
    now += 5000;
    expect((await b.viewers()).has(p('bob@contoso.com'))).toBe(true);
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(29 * DAY);

    // Carol opens 20 days later; after 31 days Bob's opening is too old, Carol's is not.
    now += 20 * DAY;
    await b.mark(p('carol@contoso.com'));
    now += 11 * DAY;
    expect([...(await a.viewers())].sort()).toEqual(['carol@contoso.com']);
    expect(await redis.zscore(key, 'bob@contoso.com')).toBeNull();

    await a.forget(p('carol@contoso.com'));
    expect((await a.viewers()).has(p('carol@contoso.com'))).toBe(false);
    now += 5000;
    expect((await b.viewers()).has(p('carol@contoso.com'))).toBe(false);
  });

  it('many callers at once make one read; Redis down leaves the last copy', async () => {
    let now = 2_000_000_000_000;
    const key = `${prefix}:teams:homes`;
    const own = new Redis(REDIS_URL);
    const v = new HomeViewers(own, key, { ttlMs: DAY, maxAgeMs: 1000, now: () => now });
    await v.mark(p('alice@contoso.com'));
    now += 1000;
    let reads = 0;
    const multi = own.multi.bind(own);
    own.multi = ((...args: Parameters<typeof own.multi>) => (reads++, multi(...args))) as typeof own.multi;
    const all = await Promise.all(Array.from({ length: 50 }, () => v.viewers()));
    expect(reads).toBe(1);
    expect(all.every((s) => s.has(p('alice@contoso.com')))).toBe(true);
    own.disconnect();
    now += 1000;
    expect((await v.viewers()).has(p('alice@contoso.com'))).toBe(true);
    const fresh = new HomeViewers(own, key, { ttlMs: DAY, now: () => now });
    expect((await fresh.viewers()).size).toBe(0);
  });
});
