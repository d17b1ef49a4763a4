// AuditLog over the Redis Stream `${prefix}:audit`, shared with RedisRequestStore (which appends
// transition events in the same script as the transition). Append-only: nothing here trims or deletes.
import type { Redis } from 'ioredis';
import type { AuditEvent } from '../../core/types.js';
import type { AuditLog, AuditQuery, AuditScope } from '../../app/ports.js';
import { LUA_DRAIN_ZSET, LUA_RECORD, auditTargetKey, decodeAuditEntry, defineScript, encodeAuditEvent, type ScriptCall } from './scripts.js';
import { decodeHead } from './request-codec.js';

/**
 * One event outside a transition (rules applied / removed, reminders, reconciler): XADD, its id
 * pushed to the target's list, and recorded in its request's record (the per-request index, see
 * request-codec.ts); for an event with no such record (orphans, or a request still stored by an
 * older version) in the list audit:req:<requestId>, as older versions did for every event.
 */
const LUA_APPEND =
  LUA_RECORD +
  `
-- KEYS: 1 req:<requestId>, 2 stream, 3 audit:req:<requestId>, 4 audit:bytarget:<target>; ARGV: 1 event fields (JSON array)
local fields = cjson.decode(ARGV[1])
local sid = redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('RPUSH', KEYS[4], sid)
local rec = nil
if redis.call('TYPE', KEYS[1])['ok'] == 'string' then rec = parse_record(redis.call('GET', KEYS[1])) end
if rec then redis.call('SET', KEYS[1], rebuild(rec, { sid })) else redis.call('RPUSH', KEYS[3], sid) end
return { sid }
`;

/** Stream ids carry Redis's clock; event times carry ours. Read this far back and filter by `time`. */
const CLOCK_SKEW_MARGIN_MS = 5 * 60_000;
/** Set once every event of the stream was in its target's sorted set (audit:target:<t>, versions before v2). */
const INDEXED_MARKER_V1 = 'audit:indexed:v1';
/** Set once every event of the stream is in its target's list (audit:bytarget:<t>; events appended since index themselves). */
const INDEXED_MARKER = 'audit:indexed:v2';

/** Stream ids (`<ms>-<seq>`) in stream order. */
function compareStreamIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}

export class RedisAuditLog implements AuditLog {
  private readonly appendScript: ScriptCall;
  private readonly drainScript: ScriptCall;
  private indexed: Promise<void> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.appendScript = defineScript(redis, 'jitAuditAppendV2', LUA_APPEND);
    this.drainScript = defineScript(redis, 'jitDrainZset', LUA_DRAIN_ZSET);
  }

  private k(suffix: string): string {
    return `${this.prefix}:${suffix}`;
  }

  async append(event: AuditEvent): Promise<AuditEvent> {
    // XADD and the index writes of the new id in one script: atomic, and the id is known inside it.
    const keys = [this.k(`req:${event.requestId}`), this.k('audit'), this.k(`audit:req:${event.requestId}`), auditTargetKey(this.prefix, event)];
    const res = await this.appendScript(keys.length, ...keys, JSON.stringify(encodeAuditEvent(event)));
    const id = Array.isArray(res) && typeof res[0] === 'string' ? res[0] : undefined;
    if (!id) throw new Error('audit append returned no stream id');
    return { ...event, id };
  }

  /**
   * Oldest first. `since` is inclusive and compared with each event's `time` (epoch ms);
   * `limit` defaults to 1000.
   */
  async list(query: AuditQuery = {}): Promise<AuditEvent[]> {
    const limit = query.limit ?? 1000;
    if (limit <= 0) return [];
    const since = query.since;
    const keep = (e: AuditEvent) => since === undefined || e.time >= since;

    if (query.requestId !== undefined) {
      const [ids = []] = await this.requestAuditIds([query.requestId]);
      if (ids.length === 0) return [];
      const pipe = this.redis.pipeline();
      for (const id of ids) pipe.xrange(this.k('audit'), id, id);
      const res = (await pipe.exec()) ?? [];
      const out: AuditEvent[] = [];
      for (const [err, entries] of res) {
        if (err) throw err;
        for (const [id, fields] of (entries ?? []) as Array<[string, string[]]>) {
          const e = decodeAuditEntry(id, fields);
          if (!keep(e)) continue;
          out.push(e);
          if (out.length >= limit) return out;
        }
      }
      return out;
    }

    // Stream ids start with Redis's ms clock: start a margin before `since` and filter by
    // `time`, paging until `limit` events are kept or the stream ends.
    let start = since === undefined ? '-' : `${Math.max(0, since - CLOCK_SKEW_MARGIN_MS)}-0`;
    const out: AuditEvent[] = [];
    for (;;) {
      const batch = limit - out.length;
      const entries = (await this.redis.xrange(this.k('audit'), start, '+', 'COUNT', batch)) as Array<[string, string[]]>;
      for (const [id, fields] of entries) {
        const e = decodeAuditEntry(id, fields);
        if (keep(e)) out.push(e);
      }
      const last = entries[entries.length - 1];
      if (!last || entries.length < batch || out.length >= limit) return out;
      start = `(${last[0]}`;
    }
  }

  /**
   * The newest `limit` events the scope covers, oldest first. Walks the per-target lists (the
   * newest `limit` + 1 ids of each, one LRANGE) and, for the scope's requesters, their requests'
   * event lists; then reads only those entries. Nothing here scans the whole stream.
   */
  async listScoped(scope: AuditScope): Promise<{ events: AuditEvent[]; truncated: boolean }> {
    if (scope.limit <= 0 || (scope.targets.length === 0 && scope.requesters.length === 0)) return { events: [], truncated: false };
    await this.ensureTargetIndex();
    const want = scope.limit + 1;
    const targets = scope.target === undefined ? scope.targets : scope.targets.filter((t) => t === scope.target);
    // Stream ids carry Redis's clock: keep those from a margin before `since`, check `time` exactly after reading.
    const floor = scope.since - CLOCK_SKEW_MARGIN_MS;
    const recent = (id: string) => Number(id.split('-')[0]) >= floor;
    const first = this.redis.pipeline();
    for (const t of targets) first.lrange(this.k(`audit:bytarget:${t}`), -want, -1);
    for (const p of scope.requesters) first.lrange(this.k(`ids:requester:${p}`), 0, -1);
    const firstRes = (await first.exec()) ?? [];
    const ids = new Set<string>();
    const requestIds: string[] = [];
    firstRes.forEach(([err, val], i) => {
      if (err) throw err;
      const list = Array.isArray(val) ? (val as string[]) : [];
      if (i < targets.length) {
        for (const id of list) if (recent(id)) ids.add(id);
      } else requestIds.push(...list);
    });
    if (requestIds.length > 0) {
      // Own requests on targets the caller cannot read: their event ids, cut at `since` the same way.
      for (const list of await this.requestAuditIds([...new Set(requestIds)])) for (const id of list) if (recent(id)) ids.add(id);
    }
    const newest = [...ids].sort((a, b) => compareStreamIds(b, a)).slice(0, want);
    const read = this.redis.pipeline();
    for (const id of newest) read.xrange(this.k('audit'), id, id);
    const events: AuditEvent[] = [];
    for (const [err, entries] of (await read.exec()) ?? []) {
      if (err) throw err;
      for (const [id, fields] of (entries ?? []) as Array<[string, string[]]>) {
        const e = decodeAuditEntry(id, fields);
        if (e.time < scope.since || (scope.target !== undefined && e.target !== scope.target)) continue;
        events.push(e);
      }
    }
    events.sort((a, b) => compareStreamIds(a.id ?? '0-0', b.id ?? '0-0'));
    const truncated = events.length > scope.limit;
    return { events: truncated ? events.slice(events.length - scope.limit) : events, truncated };
  }

  /**
   * The audit stream ids of each request, oldest first: those in its record's head and, for events
   * written by an older version (or with no record), in audit:req:<id>. One round trip.
   */
  private async requestAuditIds(requestIds: string[]): Promise<string[][]> {
    const pipe = this.redis.pipeline();
    for (const r of requestIds) {
      pipe.getBuffer(this.k(`req:${r}`));
      pipe.lrange(this.k(`audit:req:${r}`), 0, -1);
    }
    const res = (await pipe.exec()) ?? [];
    return requestIds.map((_, i) => {
      const [recErr, rec] = res[2 * i] ?? [null, null];
      const [listErr, list] = res[2 * i + 1] ?? [null, null];
      if (listErr) throw listErr;
      // WRONGTYPE: a request still stored as a hash by an older version (its ids are all in the list).
      if (recErr && !/WRONGTYPE/.test(recErr.message)) throw recErr;
      const own = Buffer.isBuffer(rec) ? (decodeHead(rec)?.auditIds ?? []) : [];
      const older = Array.isArray(list) ? (list as string[]) : [];
      if (older.length === 0) return own;
      return [...new Set([...older, ...own])].sort(compareStreamIds);
    });
  }

  /** Called at start: indexes a stream written by an older version (once), so no user read pays for it. */
  prepare(): Promise<void> {
    return this.ensureTargetIndex();
  }

  /**
   * Older versions indexed events by target in sorted sets (audit:target:<t>, ~130 B an entry);
   * now each target has a list of stream ids (~17 B an entry). Once: a stream from before any
   * target index is first indexed into those sorted sets (the v1 pass, idempotent ZADDs), then each
   * sorted set is drained into the head of its target's list (atomic steps, oldest first, ahead of
   * what this version has appended since). A marker key skips all of it afterwards. Several
   * replicas may do it at once: the drain moves each entry once; a stream indexed by the v1 pass
   * while this version appends may leave an entry twice in a list, which readers ignore.
   */
  private ensureTargetIndex(): Promise<void> {
    this.indexed ??= (async () => {
      if ((await this.redis.exists(this.k(INDEXED_MARKER))) === 1) return;
      if ((await this.redis.exists(this.k(INDEXED_MARKER_V1))) !== 1) {
        let start = '-';
        for (;;) {
          const entries = (await this.redis.xrange(this.k('audit'), start, '+', 'COUNT', 1000)) as Array<[string, string[]]>;
          if (entries.length > 0) {
            const pipe = this.redis.pipeline();
            for (const [id, fields] of entries) {
              const e = decodeAuditEntry(id, fields);
              pipe.zadd(this.k(`audit:target:${e.target}`), e.time, id);
            }
            for (const [err] of (await pipe.exec()) ?? []) if (err) throw err;
          }
          const last = entries[entries.length - 1];
          if (!last || entries.length < 1000) break;
          start = `(${last[0]}`;
        }
        await this.redis.set(this.k(INDEXED_MARKER_V1), '1');
      }
      let cursor = '0';
      const sets: string[] = [];
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', this.k('audit:target:*'), 'COUNT', 1000, 'TYPE', 'zset');
        cursor = next;
        sets.push(...keys);
      } while (cursor !== '0');
      for (const old of sets) {
        const list = this.k(`audit:bytarget:${old.slice(this.k('audit:target:').length)}`);
        while (Number(await this.drainScript(2, old, list, 1000)) > 0);
      }
      await this.redis.set(this.k(INDEXED_MARKER), '1');
    })().catch((err: unknown) => {
      this.indexed = undefined;
      throw err;
    });
    return this.indexed;
  }
}
