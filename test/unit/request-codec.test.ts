// The stored shape of a request (format j1, src/adapters/redis/request-codec.ts): plain-text head
// lines the Lua scripts and redis-cli read, then the JSON deflated with a preset dictionary. A
// record written once must read back forever: the dictionary and the window are part of the
// format, so a golden record written by this version is decoded here.
import { createHash } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { BodyCache, REQUEST_DICTIONARY_J1, decodeHead, decodeLegacy, decodeRequest, encodeRequest, joinRecord } from '../../src/adapters/redis/request-codec.js';
import type { AccessRequest, PrincipalId } from '../../src/core/types.js';
import { p, rid, tn } from '../fixtures/ids.js';

const golden: AccessRequest = {
  id: rid('rg01den001'), requester: p('alice@contoso.com'), target: tn('vm1'),
  targetId: '/subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/vm1',
  ports: [{ port: 3389, protocol: 'tcp' }], source: '203.0.113.7/32', durationMs: 7200000, justification: 'patch — KB5034441 ✓',
  status: 'active', decisions: [{ by: p('bob@contoso.com'), decision: 'approve', at: 1796304052339 }],
  createdAt: 1796304052297, updatedAt: 1796304052366, approvalExpiresAt: 1796307652297,
  rules: [{
    name: 'jit-rgolden0001-3389', scope: '/subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Network/networkSecurityGroups/vm1-nsg', priority: 100,
    direction: 'Inbound', access: 'Allow', protocol: 'tcp', sourcePrefix: '203.0.113.7/32', destinationPort: 3389,
    description: 'jit-bot request=rgolden0001 expires=2026-12-03T15:20:52.351Z', requestId: 'rgolden0001', expiresAt: 1796311252351,
  }],
  origin: { via: 'slack', replyTo: 'https://hooks.slack.com/commands/T024BE7LD/1234/abcd', timeZone: 'Europe/Berlin' },
  version: 3, activatedAt: 1796304052366, expiresAt: 1796311252351,
};
/** `golden` at version 3 with two audit ids, as written by the first version of j1. */
const GOLDEN_J1 =
  'ajEKMwphY3RpdmUKYWxpY2VAY29udG9zby5jb20Kdm0xCjE3OTYzMDQwNTIyOTgtMCwxNzk2MzA0MDUyMzQxLTAK3dZLDoIwEAbgq3ABZR6dNrAkutKlF6BA1IQIQd17B116Ok5iNEYCFF8bE9ftn0z690vmGcrt3mK3v7Iq0t+zMzTArox3ycqrDydvFgmwUgq9+nx0a7SFfRukCTSDAiHmoAvycUaBaYNsUlq7Qd5uGH3PukEuizzNNgCAL0B+VNhfkGuepk0OaQS8QAkJQqExC/bINdEOuWsliCTEgkPkvlo5SEVTM5/4SKz82CapcweJsipfb/qg239pcOAL';

/** The JSON body of a j1 record (base64), as stored. */
function inflate(b64: string): { origin: Record<string, unknown> } {
  const buf = Buffer.from(b64, 'base64');
  let at = -1;
  for (let i = 0; i < 6; i++) at = buf.indexOf(0x0a, at + 1);
  return JSON.parse(inflateRawSync(buf.subarray(at + 1), { dictionary: Buffer.from(REQUEST_DICTIONARY_J1, 'latin1'), windowBits: 12 }).toString('utf8'));
}

describe('request records (format j1)', () => {
  it('a record written by the first j1 version still reads back whole', () => {
    const buf = Buffer.from(GOLDEN_J1, 'base64');
    expect(decodeRequest(golden.id, buf)).toEqual(golden);
    expect(decodeHead(buf)).toEqual({ version: 3, status: 'active', requester: 'alice@contoso.com', target: 'vm1', auditIds: ['1796304052298-0', '1796304052341-0'] });
  });

  it('origin.channel (its name before via) reads as origin.via; new records write via', () => {
    // GOLDEN_J1 was written with origin.channel, as every record before the rename.
    const old = inflate(GOLDEN_J1);
    expect(old.origin).toEqual({ channel: 'slack', replyTo: golden.origin.replyTo, timeZone: 'Europe/Berlin' });
    expect(decodeRequest(golden.id, Buffer.from(GOLDEN_J1, 'base64')).origin).toEqual({ via: 'slack', replyTo: golden.origin.replyTo, timeZone: 'Europe/Berlin' });
    // A record encoded now from JSON that still says channel (an object as an old reader kept it).
    const { via, ...rest } = golden.origin;
    const asOld = { ...golden, origin: { channel: via, ...rest } } as unknown as AccessRequest;
    expect(decodeRequest(golden.id, joinRecord(encodeRequest(asOld, 4), [])).origin).toEqual(golden.origin);
    // What is written now says via, and only via.
    const { json } = encodeRequest(golden, 4);
    expect(JSON.parse(json).origin).toEqual(golden.origin);
    expect(json).not.toContain('"channel"');
    // The hash format before j1 too.
    expect(decodeLegacy('2', JSON.stringify({ ...asOld, version: 1 }))?.origin).toEqual(golden.origin);
  });

  it('the dictionary is part of the format: it never changes (a new one is a new format tag)', () => {
    expect(createHash('sha256').update(REQUEST_DICTIONARY_J1, 'latin1').digest('hex')).toBe('e27c18ad0e7f1251f688715f22394ab321383f1207fb79206aacf2f728399af3');
  });

  it('round-trips every field (unicode too), keeps the head readable and takes a fraction of the JSON', () => {
    const r: AccessRequest = { ...golden, statusReason: 'x', startAt: 1, pendingExtension: { addMs: 60_000, by: p('alice@contoso.com'), at: 5, decisions: [] }, escalatedAt: 7 };
    const rec = joinRecord(encodeRequest(r, 9), []);
    expect(decodeRequest(r.id, rec)).toEqual({ ...r, version: 9 });
    expect(rec.toString('latin1').split('\n').slice(0, 6)).toEqual(['j1', '9', 'active', 'alice@contoso.com', 'vm1', '']);
    expect(decodeHead(rec)?.auditIds).toEqual([]);
    expect(rec.length).toBeLessThan(JSON.stringify(r).length / 3);
  });

  it('refuses a head field with a newline, and a buffer that is not a record', () => {
    // No parse lets a newline into a principal; the codec refuses one all the same (the deliberate cast is the test).
    expect(() => encodeRequest({ ...golden, requester: 'a\nb' as PrincipalId }, 1)).toThrow(/newline/);
    expect(() => decodeRequest('r1', Buffer.from('{"id":"r1"}'))).toThrow(/not a j1 record/);
    expect(decodeHead(Buffer.from('j2\n1\na\nb\nc\n\nxyz'))).toBeNull();
  });

  it('the body cache is keyed by id and version, bounded, and never changes what a read returns', () => {
    const cache = new BodyCache(2);
    const v1 = joinRecord(encodeRequest(golden, 1), []);
    const v2 = joinRecord(encodeRequest({ ...golden, status: 'expired', statusReason: 'expired' }, 2), []);
    const first = decodeRequest(golden.id, v1, cache);
    expect(cache.get(`${golden.id}:1`)).toBeDefined();
    expect(decodeRequest(golden.id, v1, cache)).toEqual(first);
    expect(decodeRequest(golden.id, v2, cache)).toMatchObject({ status: 'expired', statusReason: 'expired', version: 2 });
    decodeRequest('rother00001', v1, cache);
    expect(cache.get(`${golden.id}:1`)).toBeUndefined(); // the oldest went out
    // Reads return fresh objects: changing one does not change the next.
    const a = decodeRequest(golden.id, v2, cache);
    a.rules.length = 0;
    expect(decodeRequest(golden.id, v2, cache).rules).toHaveLength(1);
  });
});
