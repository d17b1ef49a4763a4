// Who may see, decide on, extend and revoke a request: pure predicates over the policy book (no
// I/O). The use cases in src/app ask these and throw what they answer.
import { JitError } from './errors.js';
import { own, type EffectivePolicy, type PolicyBook } from './policy.js';
import { approversAmong, approversFor, can, hasAnyRole, isApprover, refMatches, rolesAt, unresolvedGroupsBehind, unresolvedNote } from './rbac.js';
import { describeStatus } from './state.js';
import type { AccessRequest, PrincipalId, Target } from './types.js';
import { routeApproval, type ApprovalRoute } from './workflow.js';

/** What a clicked card was about: the request itself, or an extension of the grant. */
export type DecisionScope = 'request' | 'extension';

/**
 * Who sees a request: its requester (while they hold any role) and whoever reads its target
 * (JIT Reader, JIT Approver, JIT Admin at a covering scope). An approver always reads: deciding
 * needs the approve permission, and every role with it also has read.
 */
export function canSee(book: PolicyBook, actor: PrincipalId, req: AccessRequest): boolean {
  if (req.requester === actor && hasAnyRole(book, actor)) return true;
  return can(book, actor, 'read', req.targetId);
}

/** The same answer for "no such request" and "not yours to see": ids are not confirmed to outsiders. */
export function notFoundError(book: PolicyBook, id: string): JitError {
  // Said whether or not the request exists (it confirms nothing): rights may hang on a directory group that cannot be read now.
  const unresolved = Object.keys(book.unresolvedGroups ?? {}).filter((g) => book.roles.some((r) => r.principal === `group:${g}`)).sort();
  return new JitError('not_found', `there is no request ${id} that you can see${unresolvedNote(book, unresolved)}`, 'list');
}

/** The request's target as the policy has it; a target removed from the policy file still has its grants closed. */
export function targetOf(book: PolicyBook, req: AccessRequest): Target {
  return own(book.targets, req.target) ?? { name: req.target, id: req.targetId, os: 'linux' };
}

/** Targets `actor` may request. */
export function requestableTargets(book: PolicyBook, actor: PrincipalId): Target[] {
  return Object.values(book.targets).filter((t) => can(book, actor, 'request', t.id));
}

/** Approvers of the policy, plus the escalation approvers once the request escalated. */
export function approversOf(book: PolicyBook, req: AccessRequest, policy: EffectivePolicy): PrincipalId[] {
  const base = approversFor(book, policy);
  const esc = policy.approval.escalation;
  if (!req.escalatedAt || !esc) return base;
  return [...new Set([...base, ...approversAmong(book, esc.approvers, req.targetId)])];
}

/** Who may decide on this request now, less the requester unless the policy allows self-approval. */
export function decidersOf(book: PolicyBook, req: AccessRequest, policy: EffectivePolicy): PrincipalId[] {
  return approversOf(book, req, policy).filter((p) => p !== req.requester || policy.approval.selfApproval);
}

/** An approver of the policy, or (once escalated) an escalation approver with the approve permission. */
export function mayDecide(book: PolicyBook, actor: PrincipalId, req: AccessRequest, policy: EffectivePolicy): boolean {
  if (isApprover(book, actor, policy)) return true;
  const esc = policy.approval.escalation;
  // Escalation approvers too need the approve permission covering the target.
  return Boolean(req.escalatedAt && esc && esc.approvers.some((ref) => refMatches(book, ref, actor)) && can(book, actor, 'approve', req.targetId));
}

export function assertMayDecide(book: PolicyBook, actor: PrincipalId, req: AccessRequest, policy: EffectivePolicy): void {
  if (mayDecide(book, actor, req, policy)) return;
  const refs = [...policy.approval.approvers, ...(policy.approval.escalation?.approvers ?? [])];
  throw new JitError(
    'not_approver',
    `you (${actor}) are not an approver for ${req.target}; approvers: ${approversOf(book, req, policy).join(', ') || 'none configured'}${unresolvedNote(book, unresolvedGroupsBehind(book, 'approve', req.targetId, refs))}`,
  );
}

/** A card's decision applies only to what the card was about: a request still pending, or an extension waiting. */
export function assertScope(req: AccessRequest, scope: DecisionScope | undefined): void {
  if (scope === 'request' && req.status !== 'pending') {
    throw new JitError('already_decided', `request ${req.id} ${describeStatus(req)}; this card's decision is over`);
  }
  if (scope === 'extension' && !(req.status === 'active' && req.pendingExtension)) {
    throw new JitError('already_decided', `no extension of ${req.id} is waiting for a decision (${describeStatus(req)})`);
  }
}

/** The requester, or a JIT Admin (revoke_any) on the target. */
export function mayRevoke(book: PolicyBook, actor: PrincipalId, req: AccessRequest, target: Target): boolean {
  return req.requester === actor || can(book, actor, 'revoke_any', target.id);
}

/** In what right `actor` extends a grant (the requester, a JIT Admin, an approver); null: none. */
export function extendRight(book: PolicyBook, actor: PrincipalId, req: AccessRequest, target: Target, policy: EffectivePolicy): { own: boolean; admin: boolean; approver: boolean } | null {
  const mine = req.requester === actor;
  const admin = can(book, actor, 'revoke_any', target.id);
  const approver = !mine && mayDecide(book, actor, req, policy);
  return mine || admin || approver ? { own: mine, admin, approver } : null;
}

/** Where the approval request goes, by the policy's routing (target, port, requester's role). */
export function routeOf(book: PolicyBook, req: AccessRequest, policy: EffectivePolicy): ApprovalRoute {
  return routeApproval(policy.routing, { target: req.target, ports: req.ports, requesterRoles: rolesAt(book, req.requester, req.targetId) }, policy.channels);
}
