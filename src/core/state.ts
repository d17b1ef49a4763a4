// The request state machine. Every transition is a pure function of (request, event, now) that
// returns the next request and the audit events it emits, or throws a JitError that says why not.
//
//   awaiting_source --source--> pending
//   awaiting_source | pending --timeout--> timed_out, --cancel--> cancelled
//   pending --approve (quorum reached)--> approved, --deny--> denied
//   approved --activate--> active, --fail--> failed
//   active --expire--> expired, --revoke--> revoked, --extend--> active
import { isoSeconds } from './format.js';
import { JitError } from './errors.js';
import { formatDuration } from './duration.js';
import type { AccessRequest, AppliedRule, AuditAction, AuditEvent, PrincipalId, RequestStatus } from './types.js';

export type Transition =
  | { type: 'record_source'; source: string; approvalExpiresAt: number; autoApprove: boolean; rule?: string }
  | { type: 'approve'; by: PrincipalId; quorum: number; selfApproval: boolean }
  | { type: 'deny'; by: PrincipalId; reason?: string; selfApproval: boolean; denyQuorum?: number }
  | { type: 'escalate'; approvers: string[] }
  | { type: 'timeout' }
  | { type: 'cancel'; by: string }
  | { type: 'activate'; rules: AppliedRule[]; expiresAt: number }
  | { type: 'fail'; reason: string }
  | { type: 'expire' }
  | { type: 'revoke'; by: string; reason?: string }
  | { type: 'extend'; by: string; expiresAt: number; rule?: string }
  | { type: 'request_extension'; by: PrincipalId; addMs: number }
  /** An approver extending someone else's grant: asks for the extension and casts their own vote. */
  | { type: 'propose_extension'; by: PrincipalId; addMs: number; quorum: number; selfApproval: boolean; expiresAt: number }
  | { type: 'approve_extension'; by: PrincipalId; quorum: number; selfApproval: boolean; expiresAt: number }
  | { type: 'deny_extension'; by: PrincipalId; selfApproval: boolean; reason?: string };

export interface TransitionResult {
  next: AccessRequest;
  events: AuditEvent[];
}

const FROM: Record<Transition['type'], readonly RequestStatus[]> = {
  record_source: ['awaiting_source'],
  approve: ['pending'],
  deny: ['pending'],
  escalate: ['pending'],
  timeout: ['awaiting_source', 'pending'],
  cancel: ['awaiting_source', 'pending', 'approved'],
  activate: ['approved'],
  fail: ['approved'],
  expire: ['active'],
  revoke: ['active'],
  extend: ['active'],
  request_extension: ['active'],
  propose_extension: ['active'],
  approve_extension: ['active'],
  deny_extension: ['active'],
};

export function canTransition(status: RequestStatus, type: Transition['type']): boolean {
  return FROM[type].includes(status);
}

/** Why a request in this status cannot take this transition, in words for the user. */

export function describeStatus(req: AccessRequest): string {
  const by = (kind: 'approve' | 'deny') =>
    req.decisions.filter((d) => d.decision === kind).map((d) => d.by).join(', ');
  switch (req.status) {
    case 'awaiting_source':
      return 'is waiting for the requester to open the source-address link';
    case 'pending':
      return 'is waiting for approval';
    case 'approved':
      return req.startAt
        ? `was approved by ${by('approve') || 'policy'} and opens at ${isoSeconds(req.startAt)}`
        : `was approved by ${by('approve') || 'policy'} and is being opened`;
    case 'active':
      return `is active until ${isoSeconds(req.expiresAt ?? 0)}`;
    case 'denied':
      return `was denied by ${by('deny') || 'an approver'}${req.statusReason ? ` (${req.statusReason})` : ''}`;
    case 'timed_out':
      return 'timed out waiting for approval';
    case 'cancelled':
      return 'was cancelled';
    case 'expired':
      return 'has expired';
    case 'revoked':
      return `was revoked${req.statusReason ? ` (${req.statusReason})` : ''}`;
    case 'failed':
      return `failed${req.statusReason ? `: ${req.statusReason}` : ''}`;
  }
}

function event(req: AccessRequest, action: AuditAction, actor: string, now: number, details: AuditEvent['details'] = {}): AuditEvent {
  return { time: now, actor, action, requestId: req.id, target: req.target, details };
}

/** The details of a `grant.extended` event: the expiry before and after, and what was added. */
function extendedBy(previous: number, expiresAt: number): { from: string; to: string; added: string } {
  return { from: new Date(previous).toISOString(), to: new Date(expiresAt).toISOString(), added: formatDuration(expiresAt - previous) };
}

export function applyTransition(req: AccessRequest, t: Transition, now: number): TransitionResult {
  if (!canTransition(req.status, t.type)) {
    const code = req.status !== 'pending' && (t.type === 'approve' || t.type === 'deny') ? 'already_decided' : 'invalid_transition';
    throw new JitError(code, `request ${req.id} ${describeStatus(req)}`);
  }
  const base: AccessRequest = { ...req, updatedAt: now };
  switch (t.type) {
    case 'record_source': {
      const next: AccessRequest = {
        ...base,
        source: t.source,
        status: t.autoApprove ? 'approved' : 'pending',
        approvalExpiresAt: t.approvalExpiresAt,
      };
      const events = [event(req, 'request.source_recorded', req.requester, now, { source: t.source })];
      if (t.autoApprove) events.push(event(req, 'request.approved', 'policy', now, { rule: t.rule ?? 'approval not required' }));
      return { next, events };
    }
    case 'approve': {
      if (t.by === req.requester && !t.selfApproval) {
        throw new JitError('self_approval', `you cannot approve your own request ${req.id}; another approver must decide`);
      }
      if (req.decisions.some((d) => d.by === t.by)) {
        throw new JitError('already_decided', `you have already approved request ${req.id}; it needs ${t.quorum} distinct approvers`);
      }
      const decisions = [...req.decisions, { by: t.by, decision: 'approve' as const, at: now }];
      const approvals = decisions.filter((d) => d.decision === 'approve').length;
      const done = approvals >= t.quorum;
      const events = [event(req, 'request.approval_vote', t.by, now, { approvals, quorum: t.quorum })];
      if (done) events.push(event(req, 'request.approved', t.by, now, { approvers: decisions.map((d) => d.by).join(',') }));
      return { next: { ...base, decisions, status: done ? 'approved' : 'pending' }, events };
    }
    case 'deny': {
      if (t.by === req.requester && !t.selfApproval) {
        throw new JitError('self_approval', `you cannot decide on your own request ${req.id}; to withdraw it use revoke`, `revoke ${req.id}`);
      }
      if (req.decisions.some((d) => d.by === t.by)) {
        throw new JitError('already_decided', `you have already decided on request ${req.id}`);
      }
      const decisions = [...req.decisions, { by: t.by, decision: 'deny' as const, at: now, ...(t.reason ? { reason: t.reason } : {}) }];
      const denyQuorum = t.denyQuorum ?? 1;
      const denials = decisions.filter((d) => d.decision === 'deny').length;
      if (denials < denyQuorum) {
        return {
          next: { ...base, decisions },
          events: [event(req, 'request.approval_vote', t.by, now, { decision: 'deny', denials, denyQuorum, reason: t.reason ?? null })],
        };
      }
      return {
        next: { ...base, decisions, status: 'denied', ...(t.reason ? { statusReason: t.reason } : {}) },
        events: [event(req, 'request.denied', t.by, now, { reason: t.reason ?? null, ...(denyQuorum > 1 ? { denials } : {}) })],
      };
    }
    case 'escalate':
      return {
        next: { ...base, escalatedAt: now },
        events: [event(req, 'request.escalated', 'system', now, { approvers: t.approvers.join(',') })],
      };
    case 'timeout':
      return {
        next: { ...base, status: 'timed_out', statusReason: 'no decision before the approval timeout' },
        events: [event(req, 'request.timed_out', 'system', now, {})],
      };
    case 'cancel':
      return {
        next: { ...base, status: 'cancelled', statusReason: `cancelled by ${t.by}` },
        events: [event(req, 'request.cancelled', t.by, now, {})],
      };
    case 'activate':
      return {
        next: { ...base, status: 'active', rules: t.rules, activatedAt: now, expiresAt: t.expiresAt },
        events: [
          event(req, 'grant.activated', 'system', now, {
            source: req.source,
            ports: req.ports.map((p) => `${p.port}/${p.protocol}`).join(','),
            expiresAt: new Date(t.expiresAt).toISOString(),
          }),
          ...t.rules.map((r) =>
            event(req, 'rule.applied', 'system', now, { rule: r.name, scope: r.scope, priority: r.priority, source: r.sourcePrefix, port: r.destinationPort, ...(r.ref ? { ref: r.ref } : {}) }),
          ),
        ],
      };
    case 'fail':
      return {
        next: { ...base, status: 'failed', statusReason: t.reason },
        events: [event(req, 'grant.failed', 'system', now, { reason: t.reason })],
      };
    case 'expire':
      return {
        next: { ...base, status: 'expired' },
        // lateMs: how late past the expiry the revocation started; leadMs: how early (an early close).
        events: [event(req, 'grant.expired', 'system', now, { lateMs: Math.max(0, now - (req.expiresAt ?? now)), ...((req.expiresAt ?? now) > now ? { leadMs: req.expiresAt! - now } : {}) })],
      };
    case 'revoke':
      return {
        next: { ...base, status: 'revoked', statusReason: t.reason ?? `revoked by ${t.by}` },
        events: [event(req, 'grant.revoked', t.by, now, { reason: t.reason ?? null })],
      };
    case 'extend': {
      const previous = req.expiresAt ?? now;
      if (t.expiresAt <= previous) {
        throw new JitError('invalid_transition', `the new expiry must be later than the current one (${new Date(previous).toISOString()})`);
      }
      const { pendingExtension: _dropped, ...rest } = base;
      return {
        next: { ...rest, expiresAt: t.expiresAt },
        events: [
          event(req, 'grant.extended', t.by, now, { ...extendedBy(previous, t.expiresAt), ...(t.rule ? { rule: t.rule } : {}) }),
        ],
      };
    }
    case 'request_extension': {
      if (req.pendingExtension) {
        throw new JitError('conflict', `an extension of ${req.id} by ${formatDuration(req.pendingExtension.addMs)} is already waiting for approval`);
      }
      return {
        next: { ...base, pendingExtension: { addMs: t.addMs, by: t.by, at: now, decisions: [] } },
        events: [event(req, 'grant.extension_requested', t.by, now, { add: formatDuration(t.addMs) })],
      };
    }
    case 'propose_extension': {
      // The same rules as any extension that needs approval: the proposer's vote is one of the
      // quorum, the others come from other approvers (decideExtension).
      const asked = applyTransition(req, { type: 'request_extension', by: t.by, addMs: t.addMs }, now);
      const voted = applyTransition(asked.next, { type: 'approve_extension', by: t.by, quorum: t.quorum, selfApproval: t.selfApproval, expiresAt: t.expiresAt }, now);
      return { next: voted.next, events: [...asked.events, ...voted.events] };
    }
    case 'approve_extension':
    case 'deny_extension': {
      const ext = req.pendingExtension;
      if (!ext) throw new JitError('invalid_transition', `request ${req.id} has no extension waiting for approval`);
      if (t.by === req.requester && !t.selfApproval) {
        throw new JitError('self_approval', `you cannot decide on the extension of your own request ${req.id}; another approver must decide`);
      }
      if (ext.decisions.some((d) => d.by === t.by)) throw new JitError('already_decided', `you have already decided on the extension of ${req.id}`);
      if (t.type === 'deny_extension') {
        const { pendingExtension: _gone, ...rest } = base;
        return {
          next: rest,
          events: [event(req, 'grant.extension_denied', t.by, now, { add: formatDuration(ext.addMs), reason: t.reason ?? null })],
        };
      }
      const decisions = [...ext.decisions, { by: t.by, decision: 'approve' as const, at: now }];
      const approvals = decisions.length;
      if (approvals < t.quorum) {
        return {
          next: { ...base, pendingExtension: { ...ext, decisions } },
          events: [event(req, 'grant.extension_vote', t.by, now, { approvals, quorum: t.quorum })],
        };
      }
      const previous = req.expiresAt ?? now;
      const { pendingExtension: _done, ...rest } = base;
      return {
        next: { ...rest, expiresAt: t.expiresAt },
        events: [
          event(req, 'grant.extended', t.by, now, {
            ...extendedBy(previous, t.expiresAt),
            requestedBy: ext.by,
            approvers: decisions.map((d) => d.by).join(','),
          }),
        ],
      };
    }
  }
}
