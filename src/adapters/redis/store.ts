// RequestStore over Redis. Every write that matters is one Lua script, so a transition and
// its audit events are committed together or not at all.
//
// Key layout (all under `${prefix}:`):
//   req:<id>                  string: the request, format j1 (request-codec.ts): plain-text lines
//                             (format, version, status, requester, target, the stream ids of its
//                             audit events) and the rest of its JSON, deflated with a preset
//                             dictionary (~300 B instead of a ~1.4 KB hash and a ~250 B id list)
//   ids:all                   list of request ids in creation order (RPUSH; lists cost ~10 B an
//                             entry, sorted sets ~110 B once past 128 entries)
//   ids:requester:<principal> list, same (a request's requester and target never change)
//   ids:target:<target>       list, same
//   ids:status:<status>       list of request ids in the order they entered the status (a
//                             transition LREMs the id from its old status and RPUSHes it to the new)
//   audit                     stream of audit events (fields: time actor action requestId target details)
//   audit:bytarget:<target>   list of the stream ids of that target's events, in stream order
//                             (what an audit read by a target's readers walks: its cost follows
//                             what the caller may see, not the whole stream)
//   audit:req:<requestId>     list of the stream ids of a request's events that have no j1 record
//                             to hold them (events of requests stored by an older version, orphans)
//   audit:indexed:v2          set once audit:bytarget:* covers the whole stream (see RedisAuditLog)
//   store:v2                  set once requests and request indexes of older versions are converted
//   token:<token>             string: request id of a one-time "my IP" link (PX ttl)
//
// Older versions (before store:v2) kept each request in a hash {v, json, status, requester,
// target}, its audit ids in audit:req:<id>, the request indexes in sorted sets
// idx:{all,requester:<p>,target:<t>,status:<s>} (by createdAt) and the target audit index in
// sorted sets audit:target:<t>. prepare() converts them once at start (each step atomic and safe
// to run from several replicas at once; audit:req lists stay and are read beside the records);
// until then reads accept both shapes and a transition on an old hash rewrites it in the new format.
import type { Redis } from 'ioredis';
import type { AccessRequest, AuditEvent } from '../../core/types.js';
import type { ListFilter, RequestStore } from '../../app/ports.js';
import { BodyCache, decodeLegacy, decodeRequest, encodeRequest, joinRecord } from './request-codec.js';
import { LUA_APPEND_EVENTS, LUA_DRAIN_ZSET, LUA_RECORD, auditTargetKey, defineScript, encodeAuditEvent, type ScriptCall } from './scripts.js';

export { LUA_APPEND_EVENTS, LUA_DRAIN_ZSET, LUA_RECORD, auditTargetKey, decodeAuditEntry, defineScript, encodeAuditEvent, type ScriptCall } from './scripts.js';

const LUA_CREATE =
  LUA_APPEND_EVENTS +
  LUA_RECORD +
  `
-- KEYS: 1 req, 2 stream, 3 ids:all, 4 ids:requester, 5 ids:target, 6 ids:status, 7.. audit:bytarget per event
-- ARGV: 1 id, 2 head (first five lines), 3 body, 4.. events
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local ids = append_events(7, 4)
redis.call('SET', KEYS[1], ARGV[2] .. join_ids('', ids) .. '\\n' .. ARGV[3])
for i = 3, 6 do redis.call('RPUSH', KEYS[i], ARGV[1]) end
return 1
`;
const LUA_CAS =
  LUA_APPEND_EVENTS +
  LUA_RECORD +
  `
-- KEYS: 1 req, 2 stream, 3.. audit:bytarget per event
-- ARGV: 1 prefix, 2 id, 3 expected version, 4 head (first five lines), 5 body, 6 status, 7 requester,
--       8 target, 9.. events
local kind = redis.call('TYPE', KEYS[1])['ok']
local cur, old, old_ids
if kind == 'string' then
  local rec = parse_record(redis.call('GET', KEYS[1]))
  if not rec then return redis.error_reply('ERR ' .. KEYS[1] .. ' is not a j1 request record') end
  cur, old, old_ids = rec.v, { rec.status, rec.requester, rec.target }, rec.ids
elseif kind == 'hash' then
  -- written by an older version (prepare() has not converted it yet): its audit ids stay in
  -- audit:req:<id>, where that version put them; it is replaced below
  local h = redis.call('HMGET', KEYS[1], 'v', 'status', 'requester', 'target')
  cur, old, old_ids = h[1], { h[2], h[3], h[4] }, ''
else
  return 0
end
if not cur or cur ~= ARGV[3] then return 0 end
if old[2] ~= ARGV[7] or old[3] ~= ARGV[8] then return redis.error_reply('ERR the requester and target of a request never change') end
if old[1] ~= ARGV[6] then
  if old[1] then
    redis.call('LREM', ARGV[1] .. ':ids:status:' .. old[1], 1, ARGV[2])
    -- and from an older version's sorted set, if prepare() has not drained it yet
    redis.call('ZREM', ARGV[1] .. ':idx:status:' .. old[1], ARGV[2])
  end
  redis.call('RPUSH', ARGV[1] .. ':ids:status:' .. ARGV[6], ARGV[2])
end
local ids = append_events(3, 9)
redis.call('SET', KEYS[1], ARGV[4] .. join_ids(old_ids, ids) .. '\\n' .. ARGV[5])
return 1
`;
/** KEYS: 1 req; ARGV: 1 version read, 2 record (j1). Replaces an older version's hash if it is still at that version. */
const LUA_CONVERT = `
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then return 0 end
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`;

const STORE_MARKER = 'store:v2';

// ---------------------------------------------------------------------------------------------

export class RedisRequestStore implements RequestStore {
  private readonly createScript: ScriptCall;
  private readonly casScript: ScriptCall;
  private readonly drainScript: ScriptCall;
  private readonly convertScript: ScriptCall;
  private converted: Promise<void> | undefined;
  private readonly bodies = new BodyCache();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.createScript = defineScript(redis, 'jitStoreCreateV2', LUA_CREATE);
    this.casScript = defineScript(redis, 'jitStoreCasV2', LUA_CAS);
    this.drainScript = defineScript(redis, 'jitDrainZset', LUA_DRAIN_ZSET);
    this.convertScript = defineScript(redis, 'jitStoreConvert', LUA_CONVERT);
  }

  private k(suffix: string): string {
    return `${this.prefix}:${suffix}`;
  }

  async create(request: AccessRequest, events: AuditEvent[]): Promise<boolean> {
    sameRequest(request, events);
    const { head, body, json } = encodeRequest(request, 1);
    const keys = [
      this.k(`req:${request.id}`),
      this.k('audit'),
      this.k('ids:all'),
      this.k(`ids:requester:${request.requester}`),
      this.k(`ids:target:${request.target}`),
      this.k(`ids:status:${request.status}`),
      ...events.map((e) => auditTargetKey(this.prefix, e)),
    ];
    const args = [request.id, head, body, ...events.map((e) => JSON.stringify(encodeAuditEvent(e)))];
    const res = await this.createScript(keys.length, ...keys, ...args);
    if (res === 1) this.bodies.set(`${request.id}:1`, json);
    return res === 1;
  }

  async get(id: string): Promise<AccessRequest | null> {
    const [req] = await this.getMany([id]);
    return req ?? null;
  }

  async compareAndSet(next: AccessRequest, expectedVersion: number, events: AuditEvent[]): Promise<boolean> {
    sameRequest(next, events);
    const version = expectedVersion + 1;
    const { head, body, json } = encodeRequest(next, version);
    const keys = [this.k(`req:${next.id}`), this.k('audit'), ...events.map((e) => auditTargetKey(this.prefix, e))];
    const args = [
      this.prefix,
      next.id,
      String(expectedVersion),
      head,
      body,
      next.status,
      next.requester,
      next.target,
      ...events.map((e) => JSON.stringify(encodeAuditEvent(e))),
    ];
    const res = await this.casScript(keys.length, ...keys, ...args);
    if (res === 1) this.bodies.set(`${next.id}:${version}`, json);
    return res === 1;
  }

  /** How many requests are in a status (the status index's size). */
  async countByStatus(status: AccessRequest['status']): Promise<number> {
    return this.redis.llen(this.k(`ids:status:${status}`));
  }

  async list(filter: ListFilter): Promise<AccessRequest[]> {
    const limit = filter.limit ?? 50;
    if (limit <= 0) return [];
    await this.prepare();
    const index = await this.pickIndex(filter);
    const out: AccessRequest[] = [];
    const seen = new Set<string>();
    const page = Math.max(limit, 100);
    for (let start = 0; out.length < limit; start += page) {
      // Newest first: from the list's tail.
      const ids = (await this.redis.lrange(index, -(start + page), -(start + 1))).reverse();
      if (ids.length === 0) break;
      const fresh = ids.filter((id) => !seen.has(id) && seen.add(id));
      for (const r of await this.getMany(fresh)) {
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

  /** The smallest of the indexes the filter names (LLEN), else ids:all. */
  private async pickIndex(filter: ListFilter): Promise<string> {
    const candidates: string[] = [];
    if (filter.requester !== undefined) candidates.push(this.k(`ids:requester:${filter.requester}`));
    if (filter.target !== undefined) candidates.push(this.k(`ids:target:${filter.target}`));
    if (filter.status !== undefined) candidates.push(this.k(`ids:status:${filter.status}`));
    const first = candidates[0];
    if (first === undefined) return this.k('ids:all');
    if (candidates.length === 1) return first;
    const pipe = this.redis.pipeline();
    for (const c of candidates) pipe.llen(c);
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
    for (const id of ids) pipe.getBuffer(this.k(`req:${id}`));
    const res = (await pipe.exec()) ?? [];
    const out: Array<AccessRequest | null> = [];
    const legacy: number[] = [];
    ids.forEach((id, i) => {
      const [err, val] = res[i] ?? [null, null];
      if (err) {
        // A hash written by an older version, not converted yet: read it the old way below.
        if (/WRONGTYPE/.test(err.message)) legacy.push(i);
        else throw err;
        out.push(null);
        return;
      }
      out.push(Buffer.isBuffer(val) ? decodeRequest(id, val, this.bodies) : null);
    });
    if (legacy.length > 0) {
      const old = this.redis.pipeline();
      for (const i of legacy) old.hmget(this.k(`req:${ids[i]!}`), 'v', 'json');
      const oldRes = (await old.exec()) ?? [];
      legacy.forEach((i, j) => {
        const [err, val] = oldRes[j] ?? [null, null];
        if (err) throw err;
        const [v, json] = Array.isArray(val) ? (val as Array<string | null>) : [null, null];
        out[i] = decodeLegacy(v ?? null, json ?? null);
      });
    }
    return out;
  }

  /**
   * Converts what an older version stored (see the key layout above), once: the request indexes'
   * sorted sets are drained into lists, then every request hash is rewritten as a j1 record. Run at
   * start (bootstrap) before serving; a marker key skips it afterwards. Every step is atomic and may
   * run on several replicas at once.
   */
  prepare(): Promise<void> {
    this.converted ??= (async () => {
      if ((await this.redis.exists(this.k(STORE_MARKER))) === 1) return;
      const zsets = [this.k('idx:all'), ...(await this.scanKeys('idx:requester:*', 'zset')), ...(await this.scanKeys('idx:target:*', 'zset')), ...(await this.scanKeys('idx:status:*', 'zset'))];
      for (const old of zsets) {
        const list = old.replace(`${this.prefix}:idx:`, `${this.prefix}:ids:`);
        while (Number(await this.drainScript(2, old, list, 1000)) > 0);
      }
      const hashes = await this.scanKeys('req:*', 'hash');
      for (let i = 0; i < hashes.length; i += 500) {
        const keys = hashes.slice(i, i + 500);
        const pipe = this.redis.pipeline();
        for (const key of keys) pipe.hmget(key, 'v', 'json');
        const res = (await pipe.exec()) ?? [];
        await Promise.all(
          keys.map(async (key, j) => {
            const [err, val] = res[j] ?? [null, null];
            // WRONGTYPE: another replica converted it meanwhile.
            if (err) {
              if (/WRONGTYPE/.test(err.message)) return;
              throw err;
            }
            const [v, json] = Array.isArray(val) ? (val as Array<string | null>) : [null, null];
            const req = decodeLegacy(v ?? null, json ?? null);
            // Its audit ids stay in audit:req:<id>, where the older version put them (readers look there too).
            if (req) await this.convertScript(1, key, String(req.version), joinRecord(encodeRequest(req, req.version), []));
          }),
        );
      }
      await this.redis.set(this.k(STORE_MARKER), '1');
    })().catch((err: unknown) => {
      this.converted = undefined;
      throw err;
    });
    return this.converted;
  }

  private async scanKeys(pattern: string, type: string): Promise<string[]> {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', this.k(pattern), 'COUNT', 1000, 'TYPE', type);
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
    return out;
  }
}

/** A transition's events are the request's own: their ids go into its record. */
function sameRequest(request: AccessRequest, events: AuditEvent[]): void {
  const other = events.find((e) => e.requestId !== request.id);
  if (other) throw new Error(`audit event ${other.action} is for ${other.requestId}, not ${request.id}`);
}

function matches(r: AccessRequest, f: ListFilter): boolean {
  return (
    (f.requester === undefined || r.requester === f.requester) &&
    (f.target === undefined || r.target === f.target) &&
    (f.status === undefined || r.status === f.status)
  );
}
