// RequestStore over Redis. Every write that matters is one Lua script, so a transition and
// its audit events are committed together or not at all.
//
// Key layout (all under `${prefix}:`):
//   req:<id>                  hash: v (version), json (AccessRequest, version = v),
//                             status, requester, target (copies, for moving index entries)
//   idx:all                   zset of request ids, scored by createdAt
//   idx:requester:<principal> zset, same
//   idx:target:<target>       zset, same
//   idx:status:<status>       zset, same
//   audit                     stream of audit events (fields: time actor action requestId target details)
//   audit:req:<requestId>     list of the stream ids of that request's events, oldest first
//   audit:target:<target>     zset of the stream ids of that target's events, scored by event time
//                             (what an audit read by a target's readers walks: its cost follows
//                             what the caller may see, not the whole stream)
//   audit:indexed:v1          set once audit:target:* covers the whole stream (see RedisAuditLog)
//   token:<token>             string: request id of a one-time "my IP" link (PX ttl)
import type { Redis } from 'ioredis';
import type { AccessRequest, AuditAction, AuditEvent } from '../../core/types.js';
import type { ListFilter, RequestStore } from '../../app/ports.js';

// ---------------------------------------------------------------------------------------------
// Audit event encoding (shared with RedisAuditLog)

/** Flat stream fields, readable with `redis-cli XRANGE`: time actor action requestId target details(JSON). */
export function encodeAuditEvent(e: AuditEvent): string[] {
  return [
    'time', String(e.time),
    'actor', e.actor,
    'action', e.action,
    'requestId', e.requestId,
    'target', e.target,
    'details', JSON.stringify(e.details ?? {}),
  ];
}

/** The inverse of encodeAuditEvent, given a stream entry id and its flat field list. */
export function decodeAuditEntry(id: string, fields: string[]): AuditEvent {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i] as string, fields[i + 1] as string);
  let details: AuditEvent['details'] = {};
  const raw = f.get('details');
  if (raw) {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) details = parsed as AuditEvent['details'];
    } catch {
      details = { raw };
    }
  }
  return {
    id,
    time: Number(f.get('time') ?? 0),
    actor: f.get('actor') ?? '',
    action: (f.get('action') ?? '') as AuditAction,
    requestId: f.get('requestId') ?? '',
    target: f.get('target') ?? '',
    details,
  };
}

// ---------------------------------------------------------------------------------------------
// Lua scripts, loaded with defineCommand (EVALSHA, falling back to EVAL)

export type ScriptCall = (numKeys: number, ...args: Array<string | number>) => Promise<unknown>;

/** Defines `name` on the connection (once) and returns a typed caller. */
export function defineScript(redis: Redis, name: string, lua: string): ScriptCall {
  if (typeof Reflect.get(redis, name) !== 'function') redis.defineCommand(name, { lua });
  const fn: unknown = Reflect.get(redis, name);
  if (typeof fn !== 'function') throw new Error(`ioredis did not define script command ${name}`);
  return (numKeys, ...args) => Promise.resolve(Reflect.apply(fn, redis, [numKeys, ...args]) as unknown);
}

/**
 * Appends events. Expects KEYS[2] = stream, from KEYS[firstKey] two keys per event (its
 * `audit:req:<id>` list and its `audit:target:<target>` zset) and ARGV[firstArg..] = per-event JSON
 * arrays of flat stream fields (`time` first). Returns the stream ids.
 */
export const LUA_APPEND_EVENTS = `
local function append_events(firstKey, firstArg)
  local ids = {}
  local n = (#KEYS - firstKey + 1) / 2
  for i = 0, n - 1 do
    local fields = cjson.decode(ARGV[firstArg + i])
    local sid = redis.call('XADD', KEYS[2], '*', unpack(fields))
    redis.call('RPUSH', KEYS[firstKey + 2 * i], sid)
    redis.call('ZADD', KEYS[firstKey + 2 * i + 1], tonumber(fields[2]) or 0, sid)
    ids[#ids + 1] = sid
  end
  return ids
end
`;

/** The two index keys of one audit event (see LUA_APPEND_EVENTS), under `prefix`. */
export function auditIndexKeys(prefix: string, e: AuditEvent): [string, string] {
  return [`${prefix}:audit:req:${e.requestId}`, `${prefix}:audit:target:${e.target}`];
}

const LUA_CREATE =
  LUA_APPEND_EVENTS +
  `
-- KEYS: 1 req, 2 stream, 3 idx:all, 4 idx:requester, 5 idx:target, 6 idx:status, 7.. audit:req, audit:target per event
-- ARGV: 1 id, 2 json, 3 status, 4 requester, 5 target, 6 score (createdAt), 7.. events
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', '1', 'json', ARGV[2], 'status', ARGV[3], 'requester', ARGV[4], 'target', ARGV[5])
for i = 3, 6 do redis.call('ZADD', KEYS[i], ARGV[6], ARGV[1]) end
append_events(7, 7)
return 1
`;
const LUA_CAS =
  LUA_APPEND_EVENTS +
  `
-- KEYS: 1 req, 2 stream, 3.. audit:req, audit:target per event
-- ARGV: 1 prefix, 2 id, 3 expected version, 4 new version, 5 json, 6 status, 7 requester, 8 target,
--       9 score (createdAt), 10.. events
local cur = redis.call('HGET', KEYS[1], 'v')
if not cur or cur ~= ARGV[3] then return 0 end
local old = redis.call('HMGET', KEYS[1], 'status', 'requester', 'target')
local kinds = { 'status', 'requester', 'target' }
local new = { ARGV[6], ARGV[7], ARGV[8] }
for i = 1, 3 do
  if old[i] ~= new[i] then
    if old[i] then redis.call('ZREM', ARGV[1] .. ':idx:' .. kinds[i] .. ':' .. old[i], ARGV[2]) end
    redis.call('ZADD', ARGV[1] .. ':idx:' .. kinds[i] .. ':' .. new[i], ARGV[9], ARGV[2])
  end
end
redis.call('HSET', KEYS[1], 'v', ARGV[4], 'json', ARGV[5], 'status', ARGV[6], 'requester', ARGV[7], 'target', ARGV[8])
append_events(3, 10)
return 1
`;

// ---------------------------------------------------------------------------------------------

export class RedisRequestStore implements RequestStore {
  private readonly createScript: ScriptCall;
  private readonly casScript: ScriptCall;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.createScript = defineScript(redis, 'jitStoreCreate', LUA_CREATE);
    this.casScript = defineScript(redis, 'jitStoreCas', LUA_CAS);
  }

  private k(suffix: string): string {
    return `${this.prefix}:${suffix}`;
  }

  async create(request: AccessRequest, events: AuditEvent[]): Promise<boolean> {
    const stored: AccessRequest = { ...request, version: 1 };
    const keys = [
      this.k(`req:${request.id}`),
      this.k('audit'),
      this.k('idx:all'),
      this.k(`idx:requester:${request.requester}`),
      this.k(`idx:target:${request.target}`),
      this.k(`idx:status:${request.status}`),
      ...events.flatMap((e) => auditIndexKeys(this.prefix, e)),
    ];
    const args = [
      request.id,
      JSON.stringify(stored),
      request.status,
      request.requester,
      request.target,
      String(request.createdAt),
      ...events.map((e) => JSON.stringify(encodeAuditEvent(e))),
    ];
    const res = await this.createScript(keys.length, ...keys, ...args);
    return res === 1;
  }

  async get(id: string): Promise<AccessRequest | null> {
    const [v, json] = await this.redis.hmget(this.k(`req:${id}`), 'v', 'json');
    return decodeRequest(v ?? null, json ?? null);
  }

  async compareAndSet(next: AccessRequest, expectedVersion: number, events: AuditEvent[]): Promise<boolean> {
    const version = expectedVersion + 1;
    const stored: AccessRequest = { ...next, version };
    const keys = [this.k(`req:${next.id}`), this.k('audit'), ...events.flatMap((e) => auditIndexKeys(this.prefix, e))];
    const args = [
      this.prefix,
      next.id,
      String(expectedVersion),
      String(version),
      JSON.stringify(stored),
      next.status,
      next.requester,
      next.target,
      String(next.createdAt),
      ...events.map((e) => JSON.stringify(encodeAuditEvent(e))),
    ];
    const res = await this.casScript(keys.length, ...keys, ...args);
    return res === 1;
  }

  /** How many requests are in a status (the status index's size). */
  async countByStatus(status: AccessRequest['status']): Promise<number> {
    return this.redis.zcard(this.k(`idx:status:${status}`));
  }

  async list(filter: ListFilter): Promise<AccessRequest[]> {
    const limit = filter.limit ?? 50;
    if (limit <= 0) return [];
    const index = await this.pickIndex(filter);
    const out: AccessRequest[] = [];
    const page = Math.max(limit, 100);
    for (let start = 0; out.length < limit; start += page) {
      const ids = await this.redis.zrevrange(index, start, start + page - 1);
      if (ids.length === 0) break;
      for (const r of await this.getMany(ids)) {
        if (!r || !matches(r, filter)) continue;
        out.push(r);
        if (out.length >= limit) break;
      }
      if (ids.length < page) break;
    }
    return out;
  }

  async putSourceToken(token: string, requestId: string, ttlMs: number): Promise<void> {
    const px = Math.max(1, Math.ceil(ttlMs));
    const ok = await this.redis.set(this.k(`token:${token}`), requestId, 'PX', px, 'NX');
    if (ok !== 'OK') throw new Error('source token already exists (tokens must be unique)');
  }

  async takeSourceToken(token: string): Promise<string | null> {
    return this.redis.getdel(this.k(`token:${token}`));
  }

  async peekSourceToken(token: string): Promise<string | null> {
    return this.redis.get(this.k(`token:${token}`));
  }

  /** The smallest of the indexes the filter names (ZCARD), else idx:all. */
  private async pickIndex(filter: ListFilter): Promise<string> {
    const candidates: string[] = [];
    if (filter.requester !== undefined) candidates.push(this.k(`idx:requester:${filter.requester}`));
    if (filter.target !== undefined) candidates.push(this.k(`idx:target:${filter.target}`));
    if (filter.status !== undefined) candidates.push(this.k(`idx:status:${filter.status}`));
    const first = candidates[0];
    if (first === undefined) return this.k('idx:all');
    if (candidates.length === 1) return first;
    const pipe = this.redis.pipeline();
    for (const c of candidates) pipe.zcard(c);
    const res = (await pipe.exec()) ?? [];
    let best = first;
    let bestSize = Number.POSITIVE_INFINITY;
    candidates.forEach((c, i) => {
      const [err, n] = res[i] ?? [null, null];
      const size = err || typeof n !== 'number' ? Number.POSITIVE_INFINITY : n;
      if (size < bestSize) {
        best = c;
        bestSize = size;
      }
    });
    return best;
  }

  /** One pipeline (one round trip) for many requests; null where missing. */
  async getMany(ids: string[]): Promise<Array<AccessRequest | null>> {
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hmget(this.k(`req:${id}`), 'v', 'json');
    const res = (await pipe.exec()) ?? [];
    return ids.map((_, i) => {
      const [err, val] = res[i] ?? [null, null];
      if (err) throw err;
      if (!Array.isArray(val)) return null;
      const [v, json] = val as Array<string | null>;
      return decodeRequest(v ?? null, json ?? null);
    });
  }
}

function decodeRequest(v: string | null, json: string | null): AccessRequest | null {
  if (v === null || json === null) return null;
  const req = JSON.parse(json) as AccessRequest;
  return { ...req, version: Number(v) };
}

function matches(r: AccessRequest, f: ListFilter): boolean {
  return (
    (f.requester === undefined || r.requester === f.requester) &&
    (f.target === undefined || r.target === f.target) &&
    (f.status === undefined || r.status === f.status)
  );
}
