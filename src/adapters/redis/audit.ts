// AuditLog over the Redis Stream `${prefix}:audit`, shared with RedisRequestStore (which appends
// transition events in the same script as the transition). Append-only: nothing here trims or deletes.
import type { Redis } from 'ioredis';
import type { AuditEvent } from '../../core/types.js';
import type { AuditLog, AuditQuery } from '../../app/ports.js';
import { LUA_APPEND_EVENTS, decodeAuditEntry, defineScript, encodeAuditEvent, type ScriptCall } from './store.js';

// KEYS: 1 (unused), 2 stream, 3 audit:req:<requestId>; ARGV: 1 event fields (JSON array)
const LUA_APPEND = LUA_APPEND_EVENTS + `\nreturn append_events(3, 1)\n`;

/** Stream ids carry Redis's clock; event times carry ours. Read this far back and filter by `time`. */
const CLOCK_SKEW_MARGIN_MS = 5 * 60_000;

export class RedisAuditLog implements AuditLog {
  private readonly appendScript: ScriptCall;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.appendScript = defineScript(redis, 'jitAuditAppend', LUA_APPEND);
  }

  private k(suffix: string): string {
    return `${this.prefix}:${suffix}`;
  }

  async append(event: AuditEvent): Promise<AuditEvent> {
    // XADD and RPUSH of the new id in one script: atomic, and the id is known inside it.
    const keys = [this.k('audit'), this.k('audit'), this.k(`audit:req:${event.requestId}`)];
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
      const ids = await this.redis.lrange(this.k(`audit:req:${query.requestId}`), 0, -1);
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
}
