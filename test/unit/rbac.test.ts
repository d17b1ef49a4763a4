import { describe, expect, it } from 'vitest';
import { effectivePolicy, type PolicyBook } from '../../src/core/policy.js';
import { approversFor, can, hasAnyRole, isApprover, permissionsAt, type Permission } from '../../src/core/rbac.js';
import { DEV, PROD, testBook, vmId } from '../fixtures/book.js';
import { p } from '../fixtures/ids.js';

const book = testBook();
const VM1 = vmId(PROD, 'vm1');
const DEV1 = vmId(DEV, 'dev1');

describe('RBAC scope matching', () => {
  it.each<[string, Permission, string, boolean]>([
    ['alice@contoso.com', 'request', VM1, true], // Requester at the RG covers the VM
    ['alice@contoso.com', 'request', DEV1, true],
    ['alice@contoso.com', 'approve', VM1, false], // least privilege: a requester cannot approve
    ['alice@contoso.com', 'read', VM1, false],
    ['ALICE@contoso.com', 'request', VM1, true], // principals compare case-insensitively
    ['bob@contoso.com', 'request', DEV1, false], // bob's Requester role is on prod only
    ['bob@contoso.com', 'approve', DEV1, true], // via group:oncall at the subscription
    ['carol@contoso.com', 'approve', VM1, true],
    ['carol@contoso.com', 'request', VM1, false],
    ['erin@contoso.com', 'read', VM1, true], // Reader
    ['erin@contoso.com', 'request', VM1, false],
    ['dave@contoso.com', 'revoke_any', VM1, true], // Admin
    ['dave@contoso.com', 'manage', DEV1, true],
    ['mallory@contoso.com', 'read', VM1, false], // no role at all
    ['dave@contoso.com', 'request', '/subscriptions/sub2/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/vm1', false],
  ])('%s can %s on %s: %s', (who, perm, id, expected) => {
    expect(can(book, p(who), perm, id)).toBe(expected);
  });

  it('a role at a VM scope does not leak to a sibling VM', () => {
    const b: PolicyBook = { ...book, roles: [{ principal: p('mallory@contoso.com'), role: 'JIT Requester', scope: VM1 }] };
    expect(can(b, p('mallory@contoso.com'), 'request', VM1)).toBe(true);
    expect(can(b, p('mallory@contoso.com'), 'request', vmId(PROD, 'db1'))).toBe(false);
    expect([...permissionsAt(b, p('mallory@contoso.com'), PROD)]).toEqual([]); // nor upwards
  });

  it('removing someone from a group removes the role they had through it', () => {
    const b: PolicyBook = { ...book, groups: { oncall: [p('carol@contoso.com')] } };
    expect(can(b, p('bob@contoso.com'), 'approve', VM1)).toBe(false);
  });
});

describe('approvers', () => {
  it('named approvers (a group) decide; others do not, even with the Admin role', () => {
    const pol = effectivePolicy(book, book.targets.vm1!);
    expect(isApprover(book, p('bob@contoso.com'), pol)).toBe(true);
    expect(isApprover(book, p('alice@contoso.com'), pol)).toBe(false);
    expect(isApprover(book, p('dave@contoso.com'), pol)).toBe(false);
    expect(approversFor(book, pol)).toEqual(['bob@contoso.com', 'carol@contoso.com']);
  });

  it('without named approvers, whoever holds approve at a covering scope decides', () => {
    const b: PolicyBook = { ...book, policies: [] };
    const pol = effectivePolicy(b, b.targets.vm1!);
    expect(isApprover(b, p('dave@contoso.com'), pol)).toBe(true); // Admin
    expect(isApprover(b, p('carol@contoso.com'), pol)).toBe(true); // Approver via group
    expect(isApprover(b, p('erin@contoso.com'), pol)).toBe(false); // Reader
    expect(approversFor(b, pol)).toEqual(['bob@contoso.com', 'carol@contoso.com', 'dave@contoso.com']);
  });

  it('named is not enough: a named group without the approve permission decides nothing (issue 17)', () => {
    const b: PolicyBook = { ...book, roles: book.roles.filter((r) => r.principal !== 'group:oncall') };
    const pol = effectivePolicy(b, b.targets.vm1!);
    expect(isApprover(b, p('bob@contoso.com'), pol)).toBe(false);
    expect(isApprover(b, p('carol@contoso.com'), pol)).toBe(false);
    expect(approversFor(b, pol)).toEqual([]);
    expect(hasAnyRole(b, p('carol@contoso.com'))).toBe(false);
    expect(hasAnyRole(b, p('bob@contoso.com'))).toBe(true); // JIT Requester on prod
  });
});
