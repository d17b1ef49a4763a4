// How a request is stored in its Redis key (`<prefix>:req:<id>`, a string), format `j1`:
//
//   j1\n<version>\n<status>\n<requester>\n<target>\n<audit stream ids, comma-separated>\n<deflated JSON>
//
// The first six lines are plain text, so `redis-cli GET` shows the version, status, requester,
// target and the ids of the request's audit events (oldest first: the per-request audit index,
// appended by the same Lua script as each event), and the store's Lua scripts read and rewrite them
// without decompressing. The rest is the request's JSON without those fields and without `id` (the
// key has it), compressed with raw DEFLATE and the preset dictionary below: a request of ~1 KB of
// JSON takes ~200 bytes (docs/benchmarks.md, "Footprint"). To read one, `npm run jit -- status <id>`.
//
// Versions before this one stored a hash {v, json, status, requester, target}: decodeLegacy reads
// it, and RedisRequestStore.prepare() converts those hashes once (see store.ts). Records of either
// kind written before `origin.channel` became `origin.via` are read with `via` (readOrigin).
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { AccessRequest, RequestOrigin, RequestStatus } from '../../core/types.js';

export const REQUEST_FORMAT = 'j1';

/**
 * The preset dictionary of format j1: typical request JSON (keys, ARM id shapes, rule fields,
 * origins), most frequent strings last. NEVER EDIT: every record written as j1 needs exactly these
 * bytes to be read back. A better dictionary is a new format tag (j2) beside this one.
 */
export const REQUEST_DICTIONARY_J1 =
  '"statusReason":"network write failed: ","pendingExtension":{"addMs":3600000,"by":"","at":,"decisions":[]},"escalatedAt":' +
  '"startAt":,"justification":"","reason":"","nat":{"publicAddress":"","publicPort":50000,"translatedPort":3389},' +
  '"origin":{"channel":"slack","replyTo":"https://hooks.slack.com/commands/T0","timeZone":"Europe/"},"origin":{"channel":"teams","replyTo":"' +
  '/providers/Microsoft.Network/azureFirewalls/","/providers/Microsoft.Network/firewallPolicies/","access":"Deny",' +
  '"ports":[{"port":22,"protocol":"tcp"}],"ports":[{"port":5985,"protocol":"tcp"},{"port":5986,"protocol":"tcp"}],' +
  '"decisions":[{"by":"@contoso.com","decision":"deny","at":1800000000000,"reason":""}],' +
  '{"targetId":"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",' +
  '"ports":[{"port":3389,"protocol":"tcp"}],"source":"203.0.113.7/32","durationMs":3600000,"justification":"",' +
  '"decisions":[{"by":"@contoso.com","decision":"approve","at":1800000000000}],"createdAt":1800000000000,"updatedAt":1800000000000,' +
  '"approvalExpiresAt":1800000000000,"rules":[{"name":"jit-r0000000000-3389","scope":"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg' +
  '/providers/Microsoft.Network/networkSecurityGroups/vm1-nsg","priority":100,"direction":"Inbound","access":"Allow","protocol":"tcp",' +
  '"sourcePrefix":"203.0.113.7/32","destinationPort":3389,"description":"jit-bot request=r0000000000 expires=2026-01-01T00:00:00.000Z",' +
  '"requestId":"r0000000000","expiresAt":1800000000000}],"origin":{"channel":"api"},"activatedAt":1800000000000,"expiresAt":1800000000000}';

const DICTIONARY = Buffer.from(REQUEST_DICTIONARY_J1, 'latin1');
/**
 * A 4 KB window (the dictionary and a request fit in it) and a small hash table: zlib's state per
 * call is ~40 KB instead of ~260 KB (malloc'd and freed on every call: the server's RSS grew by
 * it). Part of format j1: inflate with the same window.
 */
const DEFLATE = { dictionary: DICTIONARY, windowBits: 12, memLevel: 5 } as const;
const INFLATE = { dictionary: DICTIONARY, windowBits: 12 } as const;
const NL = 0x0a;

/** The plain-text head of a stored request (what the Lua scripts read). */
export interface RequestHead {
  version: number;
  status: RequestStatus;
  requester: string;
  target: string;
  /** The stream ids of the request's audit events, oldest first. */
  auditIds: string[];
}

/**
 * `request` at `version` (its own `version` field is ignored) as the stored record's first five
 * lines (`head`, ending in a newline) and its compressed `body`. The store's scripts put the audit
 * ids line between them: `head + ids + "\n" + body` (see joinRecord).
 */
export function encodeRequest(request: AccessRequest, version: number): { head: Buffer; body: Buffer; json: string } {
  for (const [name, value] of [['status', request.status], ['requester', request.requester], ['target', request.target]] as const) {
    if (value.includes('\n')) throw new Error(`request ${name} cannot contain a newline`);
  }
  const { id: _id, version: _v, status: _s, requester: _r, target: _t, ...rest } = request;
  const head = `${REQUEST_FORMAT}\n${version}\n${request.status}\n${request.requester}\n${request.target}\n`;
  const json = JSON.stringify(rest);
  return { head: Buffer.from(head, 'utf8'), body: deflateRawSync(Buffer.from(json, 'utf8'), DEFLATE), json };
}

/** A whole record from encodeRequest's parts and the audit stream ids (what the Lua scripts build). */
export function joinRecord(parts: { head: Buffer; body: Buffer }, auditIds: string[]): Buffer {
  return Buffer.concat([parts.head, Buffer.from(`${auditIds.join(',')}\n`, 'utf8'), parts.body]);
}

/** Where the compressed body starts (after the 6th newline), or -1 if `buf` is not a j1 record. */
function bodyStart(buf: Buffer): number {
  let at = -1;
  for (let i = 0; i < 6; i++) {
    at = buf.indexOf(NL, at + 1);
    if (at < 0) return -1;
  }
  return at + 1;
}

export function decodeHead(buf: Buffer): RequestHead | null {
  const start = bodyStart(buf);
  if (start < 0) return null;
  const [format, v, status, requester, target, ids] = buf.subarray(0, start - 1).toString('utf8').split('\n');
  if (format !== REQUEST_FORMAT) return null;
  return { version: Number(v), status: status as RequestStatus, requester: requester ?? '', target: target ?? '', auditIds: ids ? ids.split(',') : [] };
}

/**
 * The request stored under `id` in format j1; throws on anything else (a corrupt record must not
 * read as missing). `cache` maps `<id>:<version>` to the JSON body already known for it (a version
 * is written once, by one successful create or compare-and-set), so most reads skip inflating.
 */
export function decodeRequest(id: string, buf: Buffer, cache?: BodyCache): AccessRequest {
  const head = decodeHead(buf);
  if (!head) throw new Error(`request ${id}: not a ${REQUEST_FORMAT} record`);
  const key = `${id}:${head.version}`;
  let json = cache?.get(key);
  if (json === undefined) {
    json = inflateRawSync(buf.subarray(bodyStart(buf)), INFLATE).toString('utf8');
    cache?.set(key, json);
  }
  const rest = JSON.parse(json) as Omit<AccessRequest, 'id' | 'version' | 'status' | 'requester' | 'target'>;
  return { id, requester: head.requester, target: head.target, ...rest, origin: readOrigin(rest.origin), status: head.status, version: head.version } as AccessRequest;
}

/**
 * A stored origin as RequestOrigin. Records written before `origin.channel` was renamed `via`
 * (the audit events' name for it) carry `channel`: read as `via`. New records write `via`.
 */
function readOrigin(stored: RequestOrigin | (Omit<RequestOrigin, 'via'> & { channel?: string }) | undefined): RequestOrigin {
  if (!stored) return { via: '' };
  if ('via' in stored) return stored;
  const { channel, ...rest } = stored;
  return { via: channel ?? '', ...rest };
}

/** The JSON bodies of the latest request versions written or read here (bounded, oldest out first). */
export class BodyCache {
  private readonly map = new Map<string, string>();
  constructor(private readonly max = 2000) {}
  get(key: string): string | undefined {
    return this.map.get(key);
  }
  set(key: string, json: string): void {
    this.map.delete(key);
    this.map.set(key, json);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }
}

/** A request stored by an older version (hash fields `v` and `json`). */
export function decodeLegacy(v: string | null, json: string | null): AccessRequest | null {
  if (v === null || json === null) return null;
  const req = JSON.parse(json) as AccessRequest;
  return { ...req, origin: readOrigin(req.origin), version: Number(v) };
}
