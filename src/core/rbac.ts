// RBAC: roles assigned to principals or groups at ARM-style scopes; a role at a scope covers
// everything below it. Pure.
import { scopeCovers, type EffectivePolicy, type PolicyBook, type RoleName } from './policy.js';
import type { PrincipalId, PrincipalRef } from './types.js';

export type Permission =
  | 'read' // see requests and grants on targets in scope
  | 'request' // request access for oneself
  | 'approve' // decide on others' requests
  | 'revoke_any' // revoke or extend anyone's grant
  | 'manage'; // change policy

/** Mirrors Azure's split between reading, requesting, approving and administering JIT. */
export const ROLE_PERMISSIONS: Record<RoleName, readonly Permission[]> = {
  'JIT Reader': ['read'],
  'JIT Requester': ['request'],
  'JIT Approver': ['read', 'approve'],
  'JIT Admin': ['read', 'request', 'approve', 'revoke_any', 'manage'],
};

export const GROUP_PREFIX = 'group:';

export function normalizePrincipal(p: string): PrincipalId {
  return p.trim().toLowerCase();
}

export function groupsOf(book: PolicyBook, principal: PrincipalId): string[] {
  const me = normalizePrincipal(principal);
  return Object.entries(book.groups)
    .filter(([, members]) => members.some((m) => normalizePrincipal(m) === me))
    .map(([g]) => g);
}

/** Does `ref` (a principal or `group:x`) name this principal? */
export function refMatches(book: PolicyBook, ref: PrincipalRef, principal: PrincipalId): boolean {
  if (ref.startsWith(GROUP_PREFIX)) {
    const members = book.groups[ref.slice(GROUP_PREFIX.length)] ?? [];
    const me = normalizePrincipal(principal);
    return members.some((m) => normalizePrincipal(m) === me);
  }
  return normalizePrincipal(ref) === normalizePrincipal(principal);
}

export function expandRefs(book: PolicyBook, refs: PrincipalRef[]): PrincipalId[] {
  const out = new Set<PrincipalId>();
  for (const ref of refs) {
    if (ref.startsWith(GROUP_PREFIX)) {
      for (const m of book.groups[ref.slice(GROUP_PREFIX.length)] ?? []) out.add(normalizePrincipal(m));
    } else out.add(normalizePrincipal(ref));
  }
  return [...out];
}

export function rolesAt(book: PolicyBook, principal: PrincipalId, resourceId: string): RoleName[] {
  return book.roles
    .filter((a) => refMatches(book, a.principal, principal) && scopeCovers(a.scope, resourceId))
    .map((a) => a.role);
}

export function permissionsAt(book: PolicyBook, principal: PrincipalId, resourceId: string): Set<Permission> {
  const perms = new Set<Permission>();
  for (const role of rolesAt(book, principal, resourceId)) for (const p of ROLE_PERMISSIONS[role]) perms.add(p);
  return perms;
}

export function can(book: PolicyBook, principal: PrincipalId, perm: Permission, resourceId: string): boolean {
  return permissionsAt(book, principal, resourceId).has(perm);
}

/**
 * Who may decide on requests for this target: the policy's named approvers when it names any,
 * else every principal holding `approve` at a scope covering the target.
 */
export function isApprover(book: PolicyBook, principal: PrincipalId, policy: EffectivePolicy): boolean {
  if (policy.approval.approvers.length > 0) {
    return policy.approval.approvers.some((ref) => refMatches(book, ref, principal));
  }
  return can(book, principal, 'approve', policy.target.id);
}

export function approversFor(book: PolicyBook, policy: EffectivePolicy): PrincipalId[] {
  if (policy.approval.approvers.length > 0) return expandRefs(book, policy.approval.approvers);
  const everyone = new Set<PrincipalId>([
    ...Object.keys(book.principals).map(normalizePrincipal),
    ...Object.values(book.groups).flat().map(normalizePrincipal),
    ...book.roles.filter((r) => !r.principal.startsWith(GROUP_PREFIX)).map((r) => normalizePrincipal(r.principal)),
  ]);
  return [...everyone].filter((p) => can(book, p, 'approve', policy.target.id)).sort();
}
