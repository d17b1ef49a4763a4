// RedisRequestStore and RedisAuditLog against the real Redis, under a random key prefix.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisAuditLog } from '../../src/adapters/redis/audit.js';
import { createRedis } from '../../src/adapters/redis/connection.js';
import { RedisRequestStore, decodeAuditEntry, encodeAuditEvent } from '../../src/adapters/redis/store.js';
import type { AccessRequest, AuditAction, AuditEvent, RequestStatus } from '../../src/core/types.js';
import { p, rid, tn } from '../fixtures/ids.js';
import { formatRequestId, type RequestId } from '../../src/core/ids.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `test:store:${randomBytes(6).toString('hex')}`;

let redis: Redis;
let store: RedisRequestStore;
let audit: RedisAuditLog;
let seq = 0;

function newId(): RequestId {
  seq += 1;
  return formatRequestId(randomBytes(9));
}

function req(over: Partial<AccessRequest> = {}): AccessRequest {
  const now = Date.now();
  return {
    id: newId(),
    requester: p('alice@contoso.com'),
    target: tn('vm1'),
    targetId: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1',
    ports: [{ port: 3389, protocol: 'tcp' }],
    source: '203.0.113.7/32',
    durationMs: 3_600_000,
    justification: 'patching',
    status: 'pending',
    decisions: [],
    createdAt: now,
    updatedAt: now,
    approvalExpiresAt: now + 3_600_000,
    rules: [],
    origin: { via: 'test' },
    version: 0,
    ...over,
  };
}

function ev(r: AccessRequest, action: AuditAction, details: AuditEvent['details'] = {}, actor = r.requester): AuditEvent {
  return { time: Date.now(), actor, action, requestId: r.id, target: r.target, details };
}

beforeAll(async () => {
  redis = createRedis(REDIS_URL);
  await redis.ping();
  store = new RedisRequestStore(redis, prefix);
  audit = new RedisAuditLog(redis, prefix);
});

afterAll(async () => {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
  await redis.quit();
});

describe('RedisRequestStore: create and get', () => {
  it('round-trips a request, stored as version 1, with its creation event', async () => {
    const r = req({ version: 7, statusReason: undefined });
    expect(await store.create(r, [ev(r, 'request.created', { ports: '3389/tcp', self: false })])).toBe(true);
    const got = await store.get(r.id);
    expect(got).toEqual({ ...r, version: 1 });
    const events = await audit.list({ requestId: r.id });
    expect(events.map((e) => [e.action, e.details])).toEqual([['request.created', { ports: '3389/tcp', self: false }]]);
    // raw layout: a string whose plain-text head says format, version, status, requester, target
    // and the request's audit ids (what redis-cli GET shows), then the compressed JSON
    const raw = await redis.getBuffer(`${prefix}:req:${r.id}`);
    expect(raw!.toString('latin1').split('\n').slice(0, 6)).toEqual(['j1', '1', 'pending', 'alice@contoso.com', 'vm1', events[0]!.id]);
    expect(raw!.length).toBeLessThan(JSON.stringify(r).length / 2);
    expect(events[0]?.id).toMatch(/^\d+-\d+$/);
  });

  it('get of an unknown id is null', async () => {
    expect(await store.get('no-such-request')).toBeNull();
  });

  it('creating the same id twice returns false and leaves the first untouched (no second event)', async () => {
    const r = req({ justification: 'first' });
    expect(await store.create(r, [ev(r, 'request.created')])).toBe(true);
    const dup = { ...r, justification: 'second', requester: p('mallory@contoso.com'), status: 'approved' as const };
    expect(await store.create(dup, [ev(dup, 'request.created')])).toBe(false);
    expect(await store.get(r.id)).toEqual({ ...r, version: 1 });
    expect(await audit.list({ requestId: r.id })).toHaveLength(1);
    expect((await store.list({ requester: p('mallory@contoso.com') })).map((x) => x.id)).not.toContain(r.id);
  });
});

describe('RedisRequestStore: compareAndSet', () => {
  it('with the right version: stores next, bumps the version, moves the status index, appends events in order', async () => {
    const r = req();
    await store.create(r, [ev(r, 'request.created')]);
    const next: AccessRequest = {
      ...r,
      status: 'approved',
      decisions: [{ by: p('bob@contoso.com'), decision: 'approve', at: Date.now() }],
      version: 1,
    };
    const ok = await store.compareAndSet(next, 1, [
      ev(r, 'request.approval_vote', { decision: 'approve' }, p('bob@contoso.com')),
      ev(r, 'request.approved', {}, p('bob@contoso.com')),
    ]);
    expect(ok).toBe(true);
    const got = await store.get(r.id);
    expect(got?.version).toBe(2);
    expect(got?.status).toBe('approved');
    expect(got?.decisions).toHaveLength(1);

    const pendingIds = (await store.list({ status: 'pending', limit: 1000 })).map((x) => x.id);
    const approvedIds = (await store.list({ status: 'approved', limit: 1000 })).map((x) => x.id);
    expect(pendingIds).not.toContain(r.id);
    expect(approvedIds).toContain(r.id);
    expect(await redis.lrange(`${prefix}:ids:status:pending`, 0, -1)).not.toContain(r.id);
    expect(await redis.lrange(`${prefix}:ids:status:approved`, 0, -1)).toEqual(expect.arrayContaining([r.id]));

    const actions = (await audit.list({ requestId: r.id })).map((e) => e.action);
    expect(actions).toEqual(['request.created', 'request.approval_vote', 'request.approved']);

    // and once more from version 2
    expect(await store.compareAndSet({ ...next, status: 'active', activatedAt: Date.now() }, 2, [ev(r, 'grant.activated')])).toBe(true);
    expect((await store.get(r.id))?.version).toBe(3);
    expect((await store.list({ status: 'approved', limit: 1000 })).map((x) => x.id)).not.toContain(r.id);
    expect((await store.list({ status: 'active', limit: 1000 })).map((x) => x.id)).toContain(r.id);
  });

  it('with a stale version: returns false, changes nothing, appends no audit event', async () => {
    const r = req();
    await store.create(r, [ev(r, 'request.created')]);
    expect(await store.compareAndSet({ ...r, status: 'approved' }, 1, [ev(r, 'request.approved')])).toBe(true);
    const before = await store.get(r.id);
    const streamLenBefore = await redis.xlen(`${prefix}:audit`);

    const stale = await store.compareAndSet({ ...r, status: 'denied', statusReason: 'late click' }, 1, [ev(r, 'request.denied')]);
    expect(stale).toBe(false);
    expect(await store.get(r.id)).toEqual(before);
    expect((await audit.list({ requestId: r.id })).map((e) => e.action)).toEqual(['request.created', 'request.approved']);
    expect(await redis.xlen(`${prefix}:audit`)).toBe(streamLenBefore);
    expect((await store.list({ status: 'denied', limit: 1000 })).map((x) => x.id)).not.toContain(r.id);
  });

  it('on an unknown id returns false and writes nothing', async () => {
    const r = req();
    expect(await store.compareAndSet(r, 1, [ev(r, 'request.approved')])).toBe(false);
    expect(await store.get(r.id)).toBeNull();
    expect(await audit.list({ requestId: r.id })).toEqual([]);
  });

  it('race: 20 concurrent CAS from the same read version, exactly one wins and one event is written', async () => {
    const r = req();
    await store.create(r, [ev(r, 'request.created')]);
    const read = await store.get(r.id);
    if (!read) throw new Error('missing');
    // separate connections, so the attempts really interleave at the server
    const conns = Array.from({ length: 4 }, () => createRedis(REDIS_URL));
    try {
      const stores = conns.map((c) => new RedisRequestStore(c, prefix));
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => {
          const approver = p(`approver${i}@contoso.com`);
          const s = stores[i % stores.length] as RedisRequestStore;
          return s.compareAndSet(
            { ...read, status: 'approved', decisions: [{ by: approver, decision: 'approve', at: Date.now() }] },
            read.version,
            [ev(read, 'request.approved', { attempt: i }, approver)],
          );
        }),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      const winner = results.indexOf(true);
      const events = await audit.list({ requestId: r.id });
      expect(events.filter((e) => e.action === 'request.approved')).toHaveLength(1);
      expect(events.find((e) => e.action === 'request.approved')?.details).toEqual({ attempt: winner });
      const got = await store.get(r.id);
      expect(got?.version).toBe(2);
      expect(got?.decisions[0]?.by).toBe(`approver${winner}@contoso.com`);
    } finally {
      for (const c of conns) c.disconnect();
    }
  });
});

describe('RedisRequestStore: list', () => {
  const requester = p(`lister-${randomBytes(3).toString('hex')}@contoso.com`);
  const target = tn(`vm-${randomBytes(3).toString('hex')}`);
  const made: AccessRequest[] = [];

  beforeAll(async () => {
    const base = Date.now() - 100_000;
    const statuses: RequestStatus[] = ['pending', 'active', 'pending', 'denied', 'active', 'pending'];
    for (let i = 0; i < statuses.length; i++) {
      const r = req({
        requester: i < 4 ? requester : p('someone-else@contoso.com'),
        target: i % 2 === 0 ? target : tn('vm-other'),
        status: statuses[i] as RequestStatus,
        createdAt: base + i * 1000,
      });
      made.push(r);
      expect(await store.create(r, [ev(r, 'request.created')])).toBe(true);
    }
  });

  const ids = (rs: AccessRequest[]) => rs.map((r) => r.id);
  const expectIds = (idxs: number[]) => idxs.map((i) => made[i]?.id);

  it('by requester, newest first', async () => {
    expect(ids(await store.list({ requester }))).toEqual(expectIds([3, 2, 1, 0]));
  });

  it('by target, newest first', async () => {
    expect(ids(await store.list({ target }))).toEqual(expectIds([4, 2, 0]));
  });

  it('by status (combined with requester), newest first', async () => {
    expect(ids(await store.list({ requester, status: 'pending' }))).toEqual(expectIds([2, 0]));
    expect(ids(await store.list({ target, status: 'active' }))).toEqual(expectIds([4]));
    expect(ids(await store.list({ requester, target, status: 'pending' }))).toEqual(expectIds([2, 0]));
  });

  it('respects limit, and returns the newest ones', async () => {
    expect(ids(await store.list({ requester, limit: 2 }))).toEqual(expectIds([3, 2]));
    expect(await store.list({ requester, limit: 0 })).toEqual([]);
  });

  it('with no filter returns everything (newest first), default limit 50', async () => {
    for (let i = 0; i < 55; i++) {
      const r = req({ createdAt: Date.now() + 1_000_000 + i, requester: p('bulk@contoso.com') });
      await store.create(r, []);
    }
    const all = await store.list({});
    expect(all).toHaveLength(50);
    for (let i = 1; i < all.length; i++) expect((all[i - 1] as AccessRequest).createdAt).toBeGreaterThanOrEqual((all[i] as AccessRequest).createdAt);
    expect(await store.list({ requester: p('bulk@contoso.com'), limit: 100 })).toHaveLength(55);
  });

  it('a status filter that is satisfied deep in a large index still finds its matches', async () => {
    // requester index is small but status filter rejects most; the pager keeps going
    const who = p(`deep-${randomBytes(3).toString('hex')}@contoso.com`);
    const base = Date.now();
    for (let i = 0; i < 130; i++) await store.create(req({ requester: who, createdAt: base + i, status: i < 3 ? 'revoked' : 'expired' }), []);
    const got = await store.list({ requester: who, status: 'revoked', limit: 5 });
    expect(got.map((r) => r.createdAt)).toEqual([base + 2, base + 1, base]);
  });
});

describe('RedisRequestStore: source tokens', () => {
  it('take is one-time', async () => {
    const tok = randomBytes(8).toString('hex');
    await store.putSourceToken(tok, 'req-1', 60_000);
    expect(await store.takeSourceToken(tok)).toBe('req-1');
    expect(await store.takeSourceToken(tok)).toBeNull();
  });

  it('peek does not consume', async () => {
    const tok = randomBytes(8).toString('hex');
    await store.putSourceToken(tok, 'req-2', 60_000);
    expect(await store.peekSourceToken(tok)).toBe('req-2');
    expect(await store.peekSourceToken(tok)).toBe('req-2');
    expect(await store.takeSourceToken(tok)).toBe('req-2');
    expect(await store.peekSourceToken(tok)).toBeNull();
  });

  it('expires after its TTL', async () => {
    const tok = randomBytes(8).toString('hex');
    await store.putSourceToken(tok, 'req-3', 50);
    expect(await store.peekSourceToken(tok)).toBe('req-3');
    await new Promise((r) => setTimeout(r, 120));
    expect(await store.peekSourceToken(tok)).toBeNull();
    expect(await store.takeSourceToken(tok)).toBeNull();
  });

  it('unknown token is null; reusing a live token is refused', async () => {
    expect(await store.takeSourceToken('never-issued')).toBeNull();
    const tok = randomBytes(8).toString('hex');
    await store.putSourceToken(tok, 'req-4', 60_000);
    await expect(store.putSourceToken(tok, 'req-5', 60_000)).rejects.toThrow(/already exists/);
    expect(await store.peekSourceToken(tok)).toBe('req-4');
  });
});

describe('RedisAuditLog', () => {
  it('append returns the event with its stream id; list by requestId gives only that request, in order', async () => {
    const a = req();
    const b = req();
    const e1 = await audit.append(ev(a, 'request.created'));
    const e2 = await audit.append(ev(b, 'request.created'));
    const e3 = await audit.append(ev(a, 'request.cancelled', { reason: 'not needed', n: 1, ok: true, none: null }));
    for (const e of [e1, e2, e3]) expect(e.id).toMatch(/^\d+-\d+$/);
    expect(e1.id).not.toBe(e3.id);

    const forA = await audit.list({ requestId: a.id });
    expect(forA.map((e) => e.id)).toEqual([e1.id, e3.id]);
    expect(forA[1]).toEqual(e3);
    expect(forA[1]?.details).toEqual({ reason: 'not needed', n: 1, ok: true, none: null });
    expect((await audit.list({ requestId: b.id })).map((e) => e.id)).toEqual([e2.id]);
    expect(await audit.list({ requestId: a.id, limit: 1 })).toEqual([e1]);
  });

  it('store transitions and direct appends share one stream and one per-request list', async () => {
    const r = req();
    await store.create(r, [ev(r, 'request.created')]);
    const mid = await audit.append(ev(r, 'rule.applied', { port: 3389 }));
    await store.compareAndSet({ ...r, status: 'cancelled' }, 1, [ev(r, 'request.cancelled')]);
    const events = await audit.list({ requestId: r.id });
    expect(events.map((e) => e.action)).toEqual(['request.created', 'rule.applied', 'request.cancelled']);
    expect(events[1]?.id).toBe(mid.id);
    const all = await audit.list({ since: Date.now() - 60_000, limit: 100_000 });
    expect(all.map((e) => e.id)).toEqual(expect.arrayContaining(events.map((e) => e.id)));
  });

  it('list is oldest first; since filters by time (inclusive); limit counts', async () => {
    const r = req();
    const first = await audit.append(ev(r, 'request.created'));
    await new Promise((res) => setTimeout(res, 20));
    const cut = Date.now();
    const second = await audit.append({ ...ev(r, 'request.approved'), time: cut });
    const third = await audit.append({ ...ev(r, 'grant.activated'), time: cut + 5 });

    const since = await audit.list({ since: cut });
    expect(since.map((e) => e.id)).toEqual([second.id, third.id]);
    expect(since.map((e) => e.id)).not.toContain(first.id);
    expect((await audit.list({ since: cut, limit: 1 })).map((e) => e.id)).toEqual([second.id]);
    expect((await audit.list({ requestId: r.id, since: cut })).map((e) => e.id)).toEqual([second.id, third.id]);

    const everything = await audit.list({ limit: 100_000 });
    const ids = everything.map((e) => e.id as string);
    expect(ids.indexOf(first.id as string)).toBeLessThan(ids.indexOf(second.id as string));
    expect(ids.indexOf(second.id as string)).toBeLessThan(ids.indexOf(third.id as string));
    expect((await audit.list({ limit: 2 })).length).toBe(2);
    expect(await audit.list()).toHaveLength(Math.min(1000, everything.length));
  });

  it('is append-only: the API has no way to delete or trim', () => {
    const methods = Object.getOwnPropertyNames(RedisAuditLog.prototype).filter((m) => m !== 'constructor');
    expect(methods).toEqual(expect.arrayContaining(['append', 'list']));
    expect(methods.filter((m) => /del|trim|remove|clear|purge|drop/i.test(m))).toEqual([]);
  });

  it('stream entries are flat and readable (what redis-cli XRANGE shows)', async () => {
    const r = req();
    const e = await audit.append(ev(r, 'grant.revoked', { by: 'admin' }, p('carol@contoso.com')));
    const raw = await redis.xrange(`${prefix}:audit`, e.id as string, e.id as string);
    const fields = raw[0]?.[1] ?? [];
    expect(fields).toEqual(encodeAuditEvent(e));
    expect(fields).toEqual([
      'time', String(e.time), 'actor', 'carol@contoso.com', 'action', 'grant.revoked',
      'requestId', r.id, 'target', 'vm1', 'details', '{"by":"admin"}',
    ]);
    expect(decodeAuditEntry(e.id as string, fields)).toEqual(e);
  });
});

describe('data written by the previous version (hash records, sorted-set indexes)', () => {
  // What the version before store:v2 wrote, command for command: a hash per request, sorted sets
  // by createdAt for every request index, the stream with a list of ids per request and a sorted
  // set of ids per target (and the marker of that index).
  const old = `test:store-legacy:${randomBytes(6).toString('hex')}`;
  const base = Date.now() - 60_000;
  const legacy = [
    req({ id: rid('r1egacy001'), requester: p('alice@contoso.com'), target: tn('vm1'), status: 'pending', createdAt: base, version: 1 }),
    req({ id: rid('r1egacy002'), requester: p('bob@contoso.com'), target: tn('vm2'), status: 'active', createdAt: base + 1000, version: 3, activatedAt: base + 1500, expiresAt: base + 3_600_000 }),
    req({ id: rid('r1egacy003'), requester: p('alice@contoso.com'), target: tn('vm1'), status: 'denied', createdAt: base + 2000, version: 2 }),
  ];
  const oldEvents = new Map<string, string[]>();

  beforeAll(async () => {
    for (const r of legacy) {
      await redis.hset(`${old}:req:${r.id}`, 'v', String(r.version), 'json', JSON.stringify(r), 'status', r.status, 'requester', r.requester, 'target', r.target);
      for (const idx of ['all', `requester:${r.requester}`, `target:${r.target}`, `status:${r.status}`]) await redis.zadd(`${old}:idx:${idx}`, r.createdAt, r.id);
      const ids: string[] = [];
      for (const action of ['request.created', r.status === 'pending' ? null : `request.${r.status === 'active' ? 'approved' : 'denied'}`]) {
        if (!action) continue;
        const e = { ...ev(r, action as AuditAction), time: r.createdAt + ids.length };
        const id = (await redis.xadd(`${old}:audit`, '*', ...encodeAuditEvent(e))) as string;
        await redis.rpush(`${old}:audit:req:${r.id}`, id);
        await redis.zadd(`${old}:audit:target:${r.target}`, e.time, id);
        ids.push(id);
      }
      oldEvents.set(r.id, ids);
    }
    await redis.set(`${old}:audit:indexed:v1`, '1');
  });

  afterAll(async () => {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${old}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  });

  it('is read before conversion, a transition on an old record rewrites it, then prepare() converts the rest once', async () => {
    const s = new RedisRequestStore(redis, old);
    const a = new RedisAuditLog(redis, old);
    const [pending, active, denied] = legacy as [AccessRequest, AccessRequest, AccessRequest];
    // Read as they are (hashes).
    expect(await s.get(pending.id)).toEqual(pending);
    expect(await s.getMany([active.id, 'rnosuch0000', denied.id])).toEqual([active, null, denied]);
    expect((await a.list({ requestId: active.id })).map((e) => e.id)).toEqual(oldEvents.get(active.id));

    // A transition on an unconverted hash: checked against its version, rewritten as a j1 record.
    expect(await s.compareAndSet({ ...pending, status: 'approved' }, 2, [ev(pending, 'request.approved')])).toBe(false);
    expect(await s.compareAndSet({ ...pending, status: 'approved' }, 1, [ev(pending, 'request.approved')])).toBe(true);
    expect(await redis.type(`${old}:req:${pending.id}`)).toBe('string');
    expect(await s.get(pending.id)).toEqual({ ...pending, status: 'approved', version: 2 });
    // Its audit: the old event (in audit:req) then the new one (in the record), in order.
    expect((await a.list({ requestId: pending.id })).map((e) => e.action)).toEqual(['request.created', 'request.approved']);

    // Two replicas convert at once: every request and index entry ends up once, in creation order.
    await Promise.all([new RedisRequestStore(redis, old).prepare(), s.prepare(), a.prepare(), new RedisAuditLog(redis, old).prepare()]);
    for (const r of legacy) expect(await redis.type(`${old}:req:${r.id}`)).toBe('string');
    expect(await redis.keys(`${old}:idx:*`)).toEqual([]);
    expect(await redis.keys(`${old}:audit:target:*`)).toEqual([]);
    expect(await redis.lrange(`${old}:ids:all`, 0, -1)).toEqual(legacy.map((r) => r.id));
    expect(await redis.lrange(`${old}:ids:requester:alice@contoso.com`, 0, -1)).toEqual([pending.id, denied.id]);
    expect(await redis.lrange(`${old}:ids:status:pending`, 0, -1)).toEqual([]);
    expect(await redis.lrange(`${old}:ids:status:approved`, 0, -1)).toEqual([pending.id]);
    expect(await s.countByStatus('active')).toBe(1);

    // Everything reads the same after conversion.
    expect(await s.get(active.id)).toEqual(active);
    expect(await s.get(denied.id)).toEqual(denied);
    expect((await s.list({ requester: p('alice@contoso.com') })).map((r) => r.id)).toEqual([denied.id, pending.id]);
    expect((await s.list({ status: 'active' })).map((r) => r.id)).toEqual([active.id]);
    expect((await a.list({ requestId: denied.id })).map((e) => e.id)).toEqual(oldEvents.get(denied.id));
    const vm1 = await a.listScoped({ targets: ['vm1'], requesters: [], since: 0, limit: 100 });
    expect(vm1.events.map((e) => `${e.requestId} ${e.action}`)).toEqual([
      `${pending.id} request.created`, `${denied.id} request.created`, `${denied.id} request.denied`, `${pending.id} request.approved`,
    ]);
    const bobs = await a.listScoped({ targets: [], requesters: [p('bob@contoso.com')], since: 0, limit: 100 });
    expect(bobs.events.map((e) => e.action)).toEqual(['request.created', 'request.approved']);

    // A later transition and a direct append on a converted record keep its audit whole and in order.
    expect(await s.compareAndSet({ ...active, status: 'expired' }, 3, [ev(active, 'grant.expired')])).toBe(true);
    await a.append(ev(active, 'rule.removed'));
    expect((await a.list({ requestId: active.id })).map((e) => e.action)).toEqual(['request.created', 'request.approved', 'grant.expired', 'rule.removed']);
  });
});

describe('RedisRequestStore: the audit of one request', () => {
  it('reads whole and in order across creation, transitions and direct appends; the record lists the ids', async () => {
    const r = req();
    await store.create(r, [ev(r, 'request.created'), ev(r, 'request.approved', {}, p('bob@contoso.com'))]);
    await audit.append(ev(r, 'notify.card_fallback', { why: 'channel_not_found' }));
    let v = 1;
    for (const action of ['grant.activated', 'grant.extended', 'grant.revoked'] as const) {
      expect(await store.compareAndSet({ ...r, status: action === 'grant.revoked' ? 'revoked' : 'active' }, v, [ev(r, action)])).toBe(true);
      v += 1;
      await audit.append(ev(r, action === 'grant.revoked' ? 'rule.removed' : 'rule.applied', { n: v }));
    }
    // Another request's events in between do not leak in.
    const other = req();
    await store.create(other, [ev(other, 'request.created')]);
    const events = await audit.list({ requestId: r.id });
    expect(events.map((e) => e.action)).toEqual([
      'request.created', 'request.approved', 'notify.card_fallback', 'grant.activated', 'rule.applied', 'grant.extended', 'rule.applied', 'grant.revoked', 'rule.removed',
    ]);
    const ids = events.map((e) => e.id as string);
    expect([...ids].sort((x, y) => Number(x.split('-')[0]) - Number(y.split('-')[0]) || Number(x.split('-')[1]) - Number(y.split('-')[1]))).toEqual(ids);
    const head = (await redis.getBuffer(`${prefix}:req:${r.id}`))!.toString('latin1').split('\n');
    expect(head[5]!.split(',')).toEqual(ids);
    expect(await redis.exists(`${prefix}:audit:req:${r.id}`)).toBe(0);
    // The stream still holds each event once (append-only log), readable as before.
    expect(await redis.xrange(`${prefix}:audit`, ids[2]!, ids[2]!)).toEqual([[ids[2], encodeAuditEvent({ ...ev(r, 'notify.card_fallback', { why: 'channel_not_found' }), time: events[2]!.time })]]);
  });

  it('a transition carrying another request\'s event is refused before anything is written', async () => {
    const r = req();
    const other = req();
    await expect(store.create(r, [ev(other, 'request.created')])).rejects.toThrow(/is for/);
    expect(await store.get(r.id)).toBeNull();
  });
});
