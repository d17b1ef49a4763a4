import { describe, expect, it } from 'vitest';
import { JitError } from '../../src/core/errors.js';
import { applyTransition, canTransition, type Transition } from '../../src/core/state.js';
import type { AccessRequest, AppliedRule, RequestStatus } from '../../src/core/types.js';
import { p, rid, tn } from '../fixtures/ids.js';
import type { PrincipalId } from '../../src/core/ids.js';

const NOW = Date.UTC(2026, 10, 24, 9, 0, 0);

function req(status: RequestStatus, extra: Partial<AccessRequest> = {}): AccessRequest {
  return {
    id: rid('rtest00001'),
    requester: p('alice@contoso.com'),
    target: tn('vm1'),
    targetId: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1',
    ports: [{ port: 3389, protocol: 'tcp' }],
    source: '203.0.113.7/32',
    durationMs: 7_200_000,
    status,
    decisions: [],
    createdAt: NOW - 1000,
    updatedAt: NOW - 1000,
    approvalExpiresAt: NOW + 3_600_000,
    rules: [],
    origin: { via: 'cli' },
    version: 3,
    ...extra,
  };
}

const rule: AppliedRule = {
  name: 'jit-rtest00001-3389', scope: '/nsg', priority: 100, direction: 'Inbound', access: 'Allow', protocol: 'tcp',
  sourcePrefix: '203.0.113.7/32', destinationPort: 3389, description: 'x', requestId: 'rtest00001', expiresAt: NOW + 7_200_000,
};

const approve = (by: PrincipalId, quorum = 1, selfApproval = false): Transition => ({ type: 'approve', by, quorum, selfApproval });

function fails(fn: () => unknown): JitError {
  try {
    fn();
  } catch (e) {
    if (e instanceof JitError) return e;
    throw e;
  }
  throw new Error('expected a JitError');
}

describe('state machine', () => {
  const ALL: RequestStatus[] = ['awaiting_source', 'pending', 'approved', 'active', 'denied', 'timed_out', 'cancelled', 'expired', 'revoked', 'failed'];
  const allowed: Record<Transition['type'], RequestStatus[]> = {
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
  const cases = Object.entries(allowed).flatMap(([t, from]) => ALL.map((s) => [t as Transition['type'], s, from.includes(s)] as const));

  it.each(cases)('%s from %s allowed: %s', (type, status, ok) => {
    expect(canTransition(status, type)).toBe(ok);
  });

  it('final states accept nothing', () => {
    for (const s of ['denied', 'timed_out', 'cancelled', 'expired', 'revoked', 'failed'] as const) {
      for (const t of Object.keys(allowed) as Transition['type'][]) expect(canTransition(s, t)).toBe(false);
    }
  });

  it('approve with quorum 1 → approved, with one audit vote and one approved event', () => {
    const { next, events } = applyTransition(req('pending'), approve(p('bob@contoso.com')), NOW);
    expect(next.status).toBe('approved');
    expect(next.decisions).toEqual([{ by: 'bob@contoso.com', decision: 'approve', at: NOW }]);
    expect(events.map((e) => e.action)).toEqual(['request.approval_vote', 'request.approved']);
    expect(next.version).toBe(3); // the store bumps the version, not the transition
  });

  it('quorum 2: the first approval keeps it pending, the same approver twice is refused, a second approver completes it', () => {
    const first = applyTransition(req('pending'), approve(p('bob@contoso.com'), 2), NOW).next;
    expect(first.status).toBe('pending');
    expect(fails(() => applyTransition(first, approve(p('bob@contoso.com'), 2), NOW)).code).toBe('already_decided');
    expect(applyTransition(first, approve(p('carol@contoso.com'), 2), NOW).next.status).toBe('approved');
  });

  it('self-approval is refused unless the policy allows it', () => {
    const e = fails(() => applyTransition(req('pending'), approve(p('alice@contoso.com')), NOW));
    expect(e.code).toBe('self_approval');
    expect(e.message).toContain('cannot approve your own request');
    expect(applyTransition(req('pending'), approve(p('alice@contoso.com'), 1, true), NOW).next.status).toBe('approved');
  });

  it('a decision on a decided request says who decided', () => {
    const approved = req('approved', { decisions: [{ by: p('bob@contoso.com'), decision: 'approve', at: NOW }] });
    const e = fails(() => applyTransition(approved, approve(p('carol@contoso.com')), NOW));
    expect(e.code).toBe('already_decided');
    expect(e.message).toContain('approved by bob@contoso.com');
    const denied = req('denied', { decisions: [{ by: p('carol@contoso.com'), decision: 'deny', at: NOW }] });
    expect(fails(() => applyTransition(denied, { type: 'deny', by: p('bob@contoso.com'), selfApproval: false }, NOW)).message).toContain('denied by carol@contoso.com');
  });

  it('deny records the reason', () => {
    const { next, events } = applyTransition(req('pending'), { type: 'deny', by: p('bob@contoso.com'), reason: 'not in a change window', selfApproval: false }, NOW);
    expect(next.status).toBe('denied');
    expect(next.statusReason).toBe('not in a change window');
    expect(events[0]).toMatchObject({ action: 'request.denied', actor: 'bob@contoso.com', details: { reason: 'not in a change window' } });
  });

  it('activate stores the rules and expiry and audits each rule', () => {
    const { next, events } = applyTransition(req('approved'), { type: 'activate', rules: [rule], expiresAt: NOW + 7_200_000 }, NOW);
    expect(next).toMatchObject({ status: 'active', activatedAt: NOW, expiresAt: NOW + 7_200_000, rules: [rule] });
    expect(events.map((e) => e.action)).toEqual(['grant.activated', 'rule.applied']);
  });

  it('extend only moves the expiry later', () => {
    const active = req('active', { expiresAt: NOW + 1000, activatedAt: NOW - 1000 });
    expect(applyTransition(active, { type: 'extend', by: 'dave@contoso.com', expiresAt: NOW + 3_601_000 }, NOW).next.expiresAt).toBe(NOW + 3_601_000);
    expect(fails(() => applyTransition(active, { type: 'extend', by: 'dave@contoso.com', expiresAt: NOW }, NOW)).code).toBe('invalid_transition');
  });

  it('revoke after expiry is refused with the reason', () => {
    const e = fails(() => applyTransition(req('expired'), { type: 'revoke', by: 'alice@contoso.com' }, NOW));
    expect(e.code).toBe('invalid_transition');
    expect(e.message).toBe('request rtest00001 has expired');
  });

  it('record_source moves to pending, or straight to approved when the policy needs no approval', () => {
    const waiting = req('awaiting_source', { source: null });
    expect(applyTransition(waiting, { type: 'record_source', source: '198.51.100.4/32', approvalExpiresAt: NOW + 1, autoApprove: false }, NOW).next).toMatchObject({ status: 'pending', source: '198.51.100.4/32' });
    const auto = applyTransition(waiting, { type: 'record_source', source: '198.51.100.4/32', approvalExpiresAt: NOW + 1, autoApprove: true }, NOW);
    expect(auto.next.status).toBe('approved');
    expect(auto.events.map((e) => e.action)).toEqual(['request.source_recorded', 'request.approved']);
  });

  it('every transition emits at least one audit event naming the request and target', () => {
    const steps: [RequestStatus, Transition][] = [
      ['pending', { type: 'timeout' }],
      ['pending', { type: 'cancel', by: 'alice@contoso.com' }],
      ['approved', { type: 'fail', reason: 'boom' }],
      ['active', { type: 'expire' }],
      ['active', { type: 'revoke', by: 'dave@contoso.com' }],
    ];
    for (const [from, t] of steps) {
      const { events } = applyTransition(req(from, { expiresAt: NOW }), t, NOW);
      expect(events.length).toBeGreaterThan(0);
      for (const e of events) expect(e).toMatchObject({ requestId: 'rtest00001', target: 'vm1', time: NOW });
    }
  });

  it('deny quorum 2: the first deny is a vote, the second distinct deny ends the request', () => {
    const deny = (by: string) => ({ type: 'deny' as const, by: p(by), selfApproval: false, denyQuorum: 2, reason: 'no' });
    const one = applyTransition(req('pending'), deny('bob@contoso.com'), NOW);
    expect(one.next.status).toBe('pending');
    expect(one.events.map((e) => e.action)).toEqual(['request.approval_vote']);
    expect(fails(() => applyTransition(one.next, deny('bob@contoso.com'), NOW)).code).toBe('already_decided');
    const two = applyTransition(one.next, deny('carol@contoso.com'), NOW);
    expect(two.next.status).toBe('denied');
    expect(two.events.map((e) => e.action)).toEqual(['request.denied']);
  });

  it('escalate marks a pending request and audits who was asked', () => {
    const { next, events } = applyTransition(req('pending'), { type: 'escalate', approvers: ['sec@contoso.com'] }, NOW);
    expect(next.escalatedAt).toBe(NOW);
    expect(next.status).toBe('pending');
    expect(events[0]).toMatchObject({ action: 'request.escalated', details: { approvers: 'sec@contoso.com' } });
  });
});
