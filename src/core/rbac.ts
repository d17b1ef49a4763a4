// RBAC: roles assigned to principals or groups at ARM-style scopes; a role at a scope covers
// everything below it. Pure.
import { listedPrincipals, own, scopeCovers, type EffectivePolicy, type PolicyBook, type RoleName } from './policy.js';
import { GROUP_PREFIX, isGroupRef, type PrincipalId, type PrincipalRef } from './ids.js';

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

export { GROUP_PREFIX } from './ids.js';

// Principals and refs are parsed (trimmed, lower-cased) where they enter (src/core/ids.ts), so
// they compare as they are.

/** Does `ref` (a principal or `group:x`) name this principal? */
export function refMatches(book: PolicyBook, ref: PrincipalRef, principal: PrincipalId): boolean {
  if (isGroupRef(ref)) return (own(book.groups, ref.slice(GROUP_PREFIX.length)) ?? []).includes(principal);
  return ref === principal;
}

export function expandRefs(book: PolicyBook, refs: PrincipalRef[]): PrincipalId[] {
  const out = new Set<PrincipalId>();
  for (const ref of refs) {
    if (isGroupRef(ref)) {
      for (const m of own(book.groups, ref.slice(GROUP_PREFIX.length)) ?? []) out.add(m);
    } else out.add(ref);
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

/** Does this principal hold any role anywhere? Without one it sees nothing and may do nothing. */
export function hasAnyRole(book: PolicyBook, principal: PrincipalId): boolean {
  return book.roles.some((a) => refMatches(book, a.principal, principal));
}

/**
 * Who may decide on requests for this target: whoever holds `approve` (JIT Approver / JIT Admin)
 * at a scope covering the target and, when the policy names approvers, is also named there.
 * Both are needed: a named group that lost its JIT Approver role decides nothing any more.
 */
export function isApprover(book: PolicyBook, principal: PrincipalId, policy: EffectivePolicy): boolean {
  if (!can(book, principal, 'approve', policy.target.id)) return false;
  return policy.approval.approvers.length === 0 || policy.approval.approvers.some((ref) => refMatches(book, ref, principal));
}

/** Of these refs (escalation approvers), the principals who also hold `approve` covering the target. */
export function approversAmong(book: PolicyBook, refs: PrincipalRef[], targetId: string): PrincipalId[] {
  return expandRefs(book, refs).filter((p) => can(book, p, 'approve', targetId));
}

export function approversFor(book: PolicyBook, policy: EffectivePolicy): PrincipalId[] {
  if (policy.approval.approvers.length > 0) return approversAmong(book, policy.approval.approvers, policy.target.id);
  const everyone = new Set<PrincipalId>([
    ...listedPrincipals(book).map(([p]) => p),
    ...Object.values(book.groups).flat(),
    ...book.roles.flatMap((r) => (isGroupRef(r.principal) ? [] : [r.principal])),
  ]);
  return [...everyone].filter((p) => can(book, p, 'approve', policy.target.id)).sort();
}

/**
 * Directory groups that could hold this right and whose membership is not known now: those with a
 * role granting `perm` at a scope covering the target, and (when given) those among `refs` (the
 * policy's approvers). For refusals: "the directory could not be read" rather than a bare "no".
 */
export function unresolvedGroupsBehind(book: PolicyBook, perm: Permission, resourceId: string, refs: PrincipalRef[] = []): string[] {
  const unresolved = book.unresolvedGroups ?? {};
  const names = new Set<string>();
  for (const a of book.roles) {
    if (!a.principal.startsWith(GROUP_PREFIX) || !ROLE_PERMISSIONS[a.role].includes(perm) || !scopeCovers(a.scope, resourceId)) continue;
    names.add(a.principal.slice(GROUP_PREFIX.length));
  }
  for (const ref of refs) if (ref.startsWith(GROUP_PREFIX)) names.add(ref.slice(GROUP_PREFIX.length));
  return [...names].filter((g) => Object.hasOwn(unresolved, g)).sort();
}

/** The sentence a refusal adds when rights may hang on directory groups that could not be read. */
export function unresolvedNote(book: PolicyBook, groups: string[]): string {
  if (groups.length === 0) return '';
  const unresolved = book.unresolvedGroups ?? {};
  return ` (the directory could not be read for ${groups.map((g) => `group ${g} [${unresolved[g]}]`).join(', ')}: rights through ${groups.length === 1 ? 'it are' : 'them are'} suspended until it can be read again)`;
}
