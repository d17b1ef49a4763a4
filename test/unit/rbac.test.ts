import { describe, expect, it } from 'vitest';
import { effectivePolicy, type PolicyBook } from '../../src/core/policy.js';
import { approversFor, can, hasAnyRole, isApprover, permissionsAt, type Permission } from '../../src/core/rbac.js';
import { DEV, PROD, testBook, vmId } from '../fixtures/book.js';

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
    expect(can(book, who, perm, id)).toBe(expected);
  });

  it('a role at a VM scope does not leak to a sibling VM', () => {
    const b: PolicyBook = { ...book, roles: [{ principal: 'mallory@contoso.com', role: 'JIT Requester', scope: VM1 }] };
    expect(can(b, 'mallory@contoso.com', 'request', VM1)).toBe(true);
    expect(can(b, 'mallory@contoso.com', 'request', vmId(PROD, 'db1'))).toBe(false);
    expect([...permissionsAt(b, 'mallory@contoso.com', PROD)]).toEqual([]); // nor upwards
  });

  it('removing someone from a group removes the role they had through it', () => {
    const b: PolicyBook = { ...book, groups: { oncall: ['carol@contoso.com'] } };
    expect(can(b, 'bob@contoso.com', 'approve', VM1)).toBe(false);
  });
});

describe('approvers', () => {
  it('named approvers (a group) decide; others do not, even with the Admin role', () => {
    const p = effectivePolicy(book, book.targets.vm1!);
    expect(isApprover(book, 'bob@contoso.com', p)).toBe(true);
    expect(isApprover(book, 'alice@contoso.com', p)).toBe(false);
    expect(isApprover(book, 'dave@contoso.com', p)).toBe(false);
    expect(approversFor(book, p)).toEqual(['bob@contoso.com', 'carol@contoso.com']);
  });

  it('without named approvers, whoever holds approve at a covering scope decides', () => {
    const b: PolicyBook = { ...book, policies: [] };
    const p = effectivePolicy(b, b.targets.vm1!);
    expect(isApprover(b, 'dave@contoso.com', p)).toBe(true); // Admin
    expect(isApprover(b, 'carol@contoso.com', p)).toBe(true); // Approver via group
    expect(isApprover(b, 'erin@contoso.com', p)).toBe(false); // Reader
    expect(approversFor(b, p)).toEqual(['bob@contoso.com', 'carol@contoso.com', 'dave@contoso.com']);
  });

  it('named is not enough: a named group without the approve permission decides nothing (issue 17)', () => {
    const b: PolicyBook = { ...book, roles: book.roles.filter((r) => r.principal !== 'group:oncall') };
    const p = effectivePolicy(b, b.targets.vm1!);
    expect(isApprover(b, 'bob@contoso.com', p)).toBe(false);
    expect(isApprover(b, 'carol@contoso.com', p)).toBe(false);
    expect(approversFor(b, p)).toEqual([]);
    expect(hasAnyRole(b, 'carol@contoso.com')).toBe(false);
    expect(hasAnyRole(b, 'bob@contoso.com')).toBe(true); // JIT Requester on prod
  });
});
