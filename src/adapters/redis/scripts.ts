// What the request store and the audit log share over Redis: the audit event's stream fields
// (encodeAuditEvent / decodeAuditEntry), Lua scripts defined on a connection (defineScript), and
// the Lua pieces both scripts use (appending events with their per-target index, the j1 record's
// parser). store.ts re-exports them.
import type { Redis } from 'ioredis';
import type { AuditAction, AuditEvent } from '../../core/types.js';

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

export type ScriptCall = (numKeys: number, ...args: Array<string | number | Buffer>) => Promise<unknown>;

/** Defines `name` on the connection (once) and returns a typed caller. */
export function defineScript(redis: Redis, name: string, lua: string): ScriptCall {
  if (typeof Reflect.get(redis, name) !== 'function') redis.defineCommand(name, { lua });
  const fn: unknown = Reflect.get(redis, name);
  if (typeof fn !== 'function') throw new Error(`ioredis did not define script command ${name}`);
  return (numKeys, ...args) => Promise.resolve(Reflect.apply(fn, redis, [numKeys, ...args]) as unknown);
}

/**
 * Appends events. Expects KEYS[2] = stream, from KEYS[firstKey] one key per event (its
 * `audit:bytarget:<target>` list) and ARGV[firstArg..] = per-event JSON arrays of flat stream
 * fields (`time` first). Returns the stream ids. Each id is pushed in the same script as its XADD,
 * so the list is in stream order; the caller records the ids in the request (see parse_record).
 */
export const LUA_APPEND_EVENTS = `
local function append_events(firstKey, firstArg)
  local ids = {}
  for i = 0, #KEYS - firstKey do
    local fields = cjson.decode(ARGV[firstArg + i])
    local sid = redis.call('XADD', KEYS[2], '*', unpack(fields))
    redis.call('RPUSH', KEYS[firstKey + i], sid)
    ids[#ids + 1] = sid
  end
  return ids
end
`;

/**
 * A j1 record (request-codec.ts) split into its fields; nil if it is not one. `ids` is the
 * comma-separated line of the request's audit stream ids; `rebuild` puts a record back together
 * with more ids.
 */
export const LUA_RECORD = `
local function parse_record(val)
  local v, st, rq, tg, ids, pos = string.match(val, '^j1\\n(%d+)\\n([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n()')
  if not v then return nil end
  return { v = v, status = st, requester = rq, target = tg, ids = ids, body = string.sub(val, pos) }
end
local function join_ids(old, new)
  local add = table.concat(new, ',')
  if old == '' then return add end
  if add == '' then return old end
  return old .. ',' .. add
end
local function rebuild(rec, new_ids)
  return 'j1\\n' .. rec.v .. '\\n' .. rec.status .. '\\n' .. rec.requester .. '\\n' .. rec.target .. '\\n' .. join_ids(rec.ids, new_ids) .. '\\n' .. rec.body
end
`;

/** The index key of one audit event (see LUA_APPEND_EVENTS), under `prefix`. */
export function auditTargetKey(prefix: string, e: AuditEvent): string {
  return `${prefix}:audit:bytarget:${e.target}`;
}

/**
 * Moves up to ARGV[1] members of the sorted set KEYS[1] (an older version's index) to the head of
 * the list KEYS[2], newest first, so the list ends up oldest → newest ahead of what new code has
 * appended since. Atomic per call; several replicas draining at once move each member once.
 * Returns how many moved (0: the set is empty, and Redis has deleted it).
 */
export const LUA_DRAIN_ZSET = `
local popped = redis.call('ZPOPMAX', KEYS[1], ARGV[1])
for i = 1, #popped, 2 do redis.call('LPUSH', KEYS[2], popped[i]) end
return #popped / 2
`;
