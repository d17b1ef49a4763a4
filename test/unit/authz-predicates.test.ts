// The pure predicates of src/core/authz.ts on the test policy (test/fixtures/book.ts): who sees a
// request, who decides on it, who extends and revokes it. No I/O; the use cases throw what these answer.
import { describe, expect, it } from 'vitest';
import { assertMayDecide, assertScope, canSee, decidersOf, extendRight, mayDecide, mayRevoke, notFoundError, requestableTargets, targetOf } from '../../src/core/authz.js';
import { isJitError } from '../../src/core/errors.js';
import { effectivePolicy } from '../../src/core/policy.js';
import type { AccessRequest } from '../../src/core/types.js';
import { PROD, testBook, vmId } from '../fixtures/book.js';
import { p, rid, tn } from '../fixtures/ids.js';

const book = testBook();
const request = (over: Partial<AccessRequest> = {}): AccessRequest => ({
  id: rid('r000000001'), requester: p('alice@contoso.com'), target: tn('vm1'), targetId: vmId(PROD, 'vm1'), ports: [{ port: 3389, protocol: 'tcp' }],
  source: '203.0.113.7/32', durationMs: 3_600_000, status: 'pending', decisions: [], createdAt: 0, updatedAt: 0, approvalExpiresAt: 3_600_000,
  rules: [], origin: { via: 'test' }, version: 1, ...over,
});
const vm1 = book.targets.vm1!;
const policy = effectivePolicy(book, vm1);
const code = (fn: () => void): string | undefined => {
  try {
    fn();
  } catch (e) {
    return isJitError(e) ? e.code : 'other';
  }
  return undefined;
};

describe('core/authz', () => {
  it('the requester and readers of the target see a request; an outsider and a requester of another scope do not', () => {
    const req = request();
    expect(canSee(book, p('alice@contoso.com'), req)).toBe(true);
    expect(canSee(book, p('erin@contoso.com'), req)).toBe(true); // JIT Reader
    expect(canSee(book, p('bob@contoso.com'), req)).toBe(true); // an approver (group oncall) reads
    expect(canSee(book, p('mallory@contoso.com'), req)).toBe(false); // no role at all
    expect(canSee(book, p('nobody@contoso.com'), req)).toBe(false);
  });

  it('not found says the same whether the request exists or not', () => {
    expect(notFoundError(book, 'r0000000001').message).toBe(notFoundError(book, 'r0000000002').message.replace('r0000000002', 'r0000000001'));
    expect(notFoundError(book, 'r0000000001').code).toBe('not_found');
  });

  it('approvers decide, the requester may not approve their own without self-approval, others are told who may', () => {
    const req = request();
    expect(mayDecide(book, p('bob@contoso.com'), req, policy)).toBe(true);
    expect(mayDecide(book, p('alice@contoso.com'), req, policy)).toBe(false);
    expect(code(() => assertMayDecide(book, p('mallory@contoso.com'), req, policy))).toBe('not_approver');
    expect(decidersOf(book, request({ requester: p('bob@contoso.com') }), policy)).not.toContain('bob@contoso.com');
    expect(decidersOf(book, req, policy).sort()).toEqual(['bob@contoso.com', 'carol@contoso.com']);
  });

  it('a card decides only what it was about: a request still pending, or an extension waiting', () => {
    expect(code(() => assertScope(request(), 'request'))).toBeUndefined();
    expect(code(() => assertScope(request({ status: 'active' }), 'request'))).toBe('already_decided');
    expect(code(() => assertScope(request({ status: 'active' }), 'extension'))).toBe('already_decided');
    expect(code(() => assertScope(request({ status: 'active', pendingExtension: { by: p('alice@contoso.com'), addMs: 60_000, at: 0, decisions: [] } }), 'extension'))).toBeUndefined();
  });

  it('revoke: the requester or a JIT Admin; extend: also an approver; nobody else', () => {
    const req = request({ status: 'active' });
    expect(mayRevoke(book, p('alice@contoso.com'), req, vm1)).toBe(true);
    expect(mayRevoke(book, p('dave@contoso.com'), req, vm1)).toBe(true);
    expect(mayRevoke(book, p('bob@contoso.com'), req, vm1)).toBe(false);
    expect(extendRight(book, p('alice@contoso.com'), req, vm1, policy)).toEqual({ own: true, admin: false, approver: false });
    expect(extendRight(book, p('dave@contoso.com'), req, vm1, policy)).toMatchObject({ own: false, admin: true });
    expect(extendRight(book, p('bob@contoso.com'), req, vm1, policy)).toEqual({ own: false, admin: false, approver: true });
    expect(extendRight(book, p('erin@contoso.com'), req, vm1, policy)).toBeNull();
  });

  it('a target removed from the policy still resolves from the record (its grants still close); requestable targets follow the roles', () => {
    expect(targetOf(book, request({ target: tn('gone1'), targetId: vmId(PROD, 'gone1') }))).toEqual({ name: 'gone1', id: vmId(PROD, 'gone1'), os: 'linux' });
    expect(requestableTargets(book, p('bob@contoso.com')).map((t) => t.name).sort()).toEqual(['db1', 'quick1', 'quorum2', 'vm1']);
    expect(requestableTargets(book, p('erin@contoso.com'))).toEqual([]);
  });
});
