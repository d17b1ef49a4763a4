import { describe, expect, it } from 'vitest';
import { JitError } from '../../src/core/errors.js';
import { checkAccess, effectivePolicy, scopeCovers, type PolicyBook } from '../../src/core/policy.js';
import { DEV, PROD, SUB, testBook, vmId } from '../fixtures/book.js';

const book = testBook();
const target = (name: string) => {
  const t = book.targets[name];
  if (!t) throw new Error(`no target ${name}`);
  return t;
};
const H = 3600_000;

function rejection(fn: () => unknown): JitError {
  try {
    fn();
  } catch (e) {
    if (e instanceof JitError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

describe('scopes', () => {
  it.each([
    [SUB, vmId(PROD, 'vm1'), true],
    [PROD, vmId(PROD, 'vm1'), true],
    [PROD.toUpperCase(), vmId(PROD, 'vm1'), true], // ARM ids are case-insensitive
    [`${PROD}/`, vmId(PROD, 'vm1'), true],
    [vmId(PROD, 'vm1'), vmId(PROD, 'vm1'), true],
    [DEV, vmId(PROD, 'vm1'), false],
    [`${SUB}/resourceGroups/pro`, vmId(PROD, 'vm1'), false], // a prefix of a name is not a parent
    [vmId(PROD, 'vm1'), vmId(PROD, 'vm10'), false],
    ['/', vmId(PROD, 'vm1'), true],
    ['/subscriptions/sub2', vmId(PROD, 'vm1'), false],
  ])('%s covers %s: %s', (scope, id, expected) => {
    expect(scopeCovers(scope, id)).toBe(expected);
  });
});

describe('policy inheritance', () => {
  it('a VM-scope policy overrides the ports of the subscription policy and keeps its approval', () => {
    const p = effectivePolicy(book, target('db1'));
    expect(p.ports).toEqual([{ port: 22, protocol: 'tcp', allowedSourcePrefixes: ['203.0.113.0/24'], maxDurationMs: H }]);
    expect(p.approval).toMatchObject({ required: true, approvers: ['group:oncall'], quorum: 1, timeoutMs: H });
    expect(p.origin.ports).toBe('db1');
    expect(p.origin['approval.required']).toBe('sub');
  });

  it('a resource-group policy overrides approval field by field', () => {
    const p = effectivePolicy(book, target('dev1'));
    expect(p.approval.required).toBe(false);
    expect(p.approval.approvers).toEqual(['group:oncall']); // inherited from the subscription
    expect(p.origin['approval.required']).toBe('dev');
    expect(p.origin['approval.approvers']).toBe('sub');
  });

  it('a deeper policy that sets only quorum keeps the inherited ports', () => {
    const p = effectivePolicy(book, target('quorum2'));
    expect(p.approval.quorum).toBe(2);
    expect(p.ports.map((r) => r.port)).toEqual([3389, 22]);
    expect(p.origin.ports).toBe('sub');
  });

  it('without any policy, OS defaults apply as in Azure JIT (Windows 3389, Linux 22, Any, 3h)', () => {
    const bare: PolicyBook = { ...book, policies: [] };
    const win = effectivePolicy(bare, target('vm1'));
    const lin = effectivePolicy(bare, target('db1'));
    expect(win.ports).toEqual([{ port: 3389, protocol: 'tcp', allowedSourcePrefixes: ['*'], maxDurationMs: 3 * H }]);
    expect(lin.ports).toEqual([{ port: 22, protocol: 'tcp', allowedSourcePrefixes: ['*'], maxDurationMs: 3 * H }]);
    expect(win.approval).toMatchObject({ required: true, selfApproval: false, quorum: 1 });
    expect(win.origin.ports).toBe('default (windows)');
  });

  it('the order of policies in the file does not matter, only scope depth', () => {
    const reversed: PolicyBook = { ...book, policies: [...book.policies].reverse() };
    expect(effectivePolicy(reversed, target('db1')).ports).toEqual(effectivePolicy(book, target('db1')).ports);
  });
});

describe('checkAccess', () => {
  const vm1 = effectivePolicy(book, target('vm1'));
  const db1 = effectivePolicy(book, target('db1'));
  const dev1 = effectivePolicy(book, target('dev1'));
  const rdp = [{ port: 3389, protocol: 'tcp' as const }];
  const ssh = [{ port: 22, protocol: 'tcp' as const }];
  const min = 5 * 60_000;

  it('accepts a request within the policy and keeps the given source', () => {
    expect(checkAccess(vm1, { ports: rdp, durationMs: 2 * H, source: '203.0.113.7/32' }, min).source).toBe('203.0.113.7/32');
  });

  it('rejects a duration over the maximum with the maximum and an example', () => {
    const e = rejection(() => checkAccess(vm1, { ports: rdp, durationMs: 99 * H }, min));
    expect(e.code).toBe('duration_too_long');
    expect(e.format('/jit')).toBe('vm1 allows at most 3h on 3389; try /jit rdp vm1 3h');
  });

  it('rejects a duration under the minimum', () => {
    const e = rejection(() => checkAccess(vm1, { ports: rdp, durationMs: 60_000 }, min));
    expect(e.code).toBe('duration_too_short');
    expect(e.message).toContain('5m');
  });

  it('rejects a port the policy does not configure, listing the allowed ones', () => {
    const e = rejection(() => checkAccess(vm1, { ports: [{ port: 8443, protocol: 'tcp' }], durationMs: H }, min));
    expect(e.code).toBe('port_not_allowed');
    expect(e.message).toBe('vm1 does not allow 8443/tcp; allowed: 3389/tcp, 22/tcp');
    expect(e.example).toBe('rdp vm1 1h');
  });

  it('rejects a source outside the allowed prefixes and suggests one that is allowed', () => {
    const e = rejection(() => checkAccess(db1, { ports: ssh, durationMs: H, source: '198.51.100.7/32' }, min));
    expect(e.code).toBe('source_not_allowed');
    expect(e.message).toContain('203.0.113.0/24');
    expect(e.example).toBe('ssh db1 1h from 203.0.113.0/24');
  });

  it('accepts a narrower range inside an allowed prefix, and rejects a wider one', () => {
    expect(checkAccess(db1, { ports: ssh, durationMs: H, source: '203.0.113.16/28' }, min).source).toBe('203.0.113.16/28');
    expect(rejection(() => checkAccess(db1, { ports: ssh, durationMs: H, source: '203.0.112.0/23' }, min)).code).toBe('source_not_allowed');
  });

  it('Any (*) is accepted only where the policy allows Any', () => {
    expect(checkAccess(vm1, { ports: rdp, durationMs: H, source: '*' }, min).source).toBe('*');
    expect(rejection(() => checkAccess(db1, { ports: ssh, durationMs: H, source: '*' }, min)).code).toBe('source_not_allowed');
  });

  it('IPv6 sources are checked against IPv6 prefixes', () => {
    const p8443 = [{ port: 8443, protocol: 'tcp' as const }];
    expect(checkAccess(dev1, { ports: p8443, durationMs: 10 * 60_000, source: '2001:db8::1/128' }, min).source).toBe('2001:db8::1/128');
    expect(rejection(() => checkAccess(dev1, { ports: p8443, durationMs: 10 * 60_000, source: '2001:db9::1/128' }, min)).code).toBe('source_not_allowed');
  });

  it('without a source, a single fixed range becomes the source; Any leaves it open for the "my IP" link', () => {
    expect(checkAccess(db1, { ports: ssh, durationMs: H }, min).source).toBe('203.0.113.0/24');
    expect(checkAccess(vm1, { ports: rdp, durationMs: H }, min).source).toBeUndefined();
  });
});
