// The Adaptive Card templates in cards/, expanded as the Teams adapter expands them: valid against
// the official Adaptive Card 1.5 schema and the adaptivecards SDK (parse + validateProperties),
// no template field left unexpanded. test/unit/cards-schema.test.ts runs the same checks on
// generated input.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { activeCard, approvalCard, expiringCard, mdEsc, noticeCard, replyCard, type CardJson } from '../../src/adapters/teams/cards.js';
import type { AccessRequest } from '../../src/core/types.js';
import { cardProblems } from '../fixtures/adaptive-card-schema.js';
import { p, rid, tn } from '../fixtures/ids.js';

/** The fields our templates bind (`${title}` …): one left in an expanded card is a bug. */
const FIELDS = [...new Set(readdirSync('cards').filter((f) => f.endsWith('.json')).flatMap((f) => [...readFileSync(`cards/${f}`, 'utf8').matchAll(/\$\{([A-Za-z]+)\}/g)].map((m) => m[1]!)))];

function validate(card: CardJson): string[] {
  const problems = cardProblems(card);
  const text = JSON.stringify(card);
  for (const f of FIELDS) if (text.includes(`\${${f}}`)) problems.push(`unexpanded template field \${${f}}`);
  return problems;
}

const req: AccessRequest = {
  id: rid('rk2m9qx7ab'), requester: p('alice@contoso.com'), target: tn('vm1'),
  targetId: '/subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/vm1',
  ports: [{ port: 3389, protocol: 'tcp' }], source: '203.0.113.7/32', durationMs: 7_200_000,
  justification: 'INC-1 [click](https://evil.example) **now** ${injected}', status: 'pending', decisions: [],
  createdAt: 1_767_000_000_000, updatedAt: 1_767_000_000_000, approvalExpiresAt: 1_767_003_600_000,
  rules: [], origin: { via: 'teams' }, version: 1,
};
const actions = (c: CardJson) => ((c.actions as Array<{ type: string; verb: string; data: Record<string, unknown> }>) ?? []).map((a) => [a.type, a.verb, a.data]);

describe('Adaptive Card templates', () => {
  const cards: Record<string, CardJson> = {
    'approval pending, approver view': approvalCard(req, { scope: 'request', quorum: 2, canDecide: true, refreshUserIds: ['29:bob'] }),
    'approval pending, read-only': approvalCard(req, { scope: 'request', quorum: 1, canDecide: false, refreshUserIds: [] }),
    'approval decided': approvalCard({ ...req, status: 'denied', statusReason: 'no', decisions: [{ by: p('bob@contoso.com'), decision: 'deny', at: req.createdAt, reason: 'no' }], escalatedAt: req.createdAt }, { scope: 'request', quorum: 1, canDecide: true, refreshUserIds: [], escalatedTo: ['sec@contoso.com'] }),
    'extension pending': approvalCard({ ...req, status: 'active', expiresAt: req.createdAt + 1, pendingExtension: { addMs: 1_800_000, by: req.requester, at: req.createdAt, decisions: [] } }, { scope: 'extension', quorum: 1, canDecide: true, refreshUserIds: ['29:bob'] }),
    'extension approved': approvalCard({ ...req, status: 'active', expiresAt: req.createdAt + 1 }, { scope: 'extension', quorum: 1, canDecide: false, refreshUserIds: [], outcome: 'approved' }),
    active: activeCard({ ...req, status: 'active', expiresAt: req.createdAt + 1 }, [{ host: 'vm1.contoso.example', port: 3389, command: 'mstsc /v:vm1.contoso.example:3389' }]),
    expiring: expiringCard({ ...req, status: 'active', expiresAt: req.createdAt + 1 }, [1_800_000, 3_600_000]),
    'expiring, no options': expiringCard({ ...req, status: 'active', expiresAt: req.createdAt + 1 }, []),
    notice: noticeCard(req, 'Your request was denied'),
    rejected: replyCard({ kind: 'rejected', code: 'duration_too_long', message: 'vm1 allows at most 3h', example: 'rdp vm1 3h' }),
    pending: replyCard({ kind: 'pending_approval', request: req, approvers: ['bob@contoso.com'] }),
    help: replyCard({ kind: 'help', examples: ['rdp vm1 1h'] }),
    list: replyCard({ kind: 'list', scope: 'mine', requests: [req] }),
    'list empty': replyCard({ kind: 'list', scope: 'mine', requests: [] }),
    closed: replyCard({ kind: 'closed', request: { ...req, status: 'revoked' } }),
  };
  for (const [name, card] of Object.entries(cards)) {
    it(`${name}: parses with no warnings and nothing left unexpanded`, () => {
      expect(validate(card)).toEqual([]);
      expect(card.version).toBe('1.5');
    });
  }

  it('the validator does catch a bad card (so the checks above can fail)', () => {
    expect(FIELDS).toContain('justification');
    expect(validate({ type: 'AdaptiveCard', version: '1.5', body: [{ type: 'TextBlok', text: '${title}' }] }).join('\n')).toMatch(/schema:[\s\S]*sdk parse: Unknown element type "TextBlok"[\s\S]*unexpanded template field \$\{title\}/);
  });

  it('buttons are Action.Execute carrying only the request id; only a viewer who may decide gets them', () => {
    expect(actions(cards['approval pending, approver view']!)).toEqual([['Action.Execute', 'approve', { requestId: req.id }], ['Action.Execute', 'deny', { requestId: req.id }]]);
    expect(actions(cards['approval pending, read-only']!)).toEqual([]);
    expect(actions(cards['approval decided']!)).toEqual([]);
    expect(actions(cards['extension pending']!).map((a) => a[1])).toEqual(['ext_approve', 'ext_deny']);
    expect((cards['approval pending, approver view']!.refresh as { userIds: string[] }).userIds).toEqual(['29:bob']);
    expect(actions(cards.expiring!)).toEqual([['Action.Execute', 'extend', { requestId: req.id, addMs: 1_800_000 }], ['Action.Execute', 'extend', { requestId: req.id, addMs: 3_600_000 }]]);
    expect(actions(cards.active!)[0]![1]).toBe('revoke');
  });

  it('user text is neutralised for Teams\' markdown: no link, no emphasis, no template expansion', () => {
    const just = (cards['approval pending, read-only']!.body as Array<{ facts?: Array<{ title: string; value: string }> }>).flatMap((b) => b.facts ?? []).find((f) => f.title === 'Justification')!.value;
    // The link is broken by an invisible zero-width space, emphasis by backslashes; `${…}` in data is never expanded.
    expect(just).toBe('INC-1 [click]\u200b(https://evil.example) \\*\\*now\\*\\* ${injected}');
    expect(mdEsc('a_b')).toBe('a_b');
  });

  it('shows quorum progress, who decided and when, the offer expiry and escalation', () => {
    const text = JSON.stringify(cards['approval decided']);
    expect(text).toContain('Denied by bob@contoso.com at 2025-12-29T09:20:00Z');
    expect(text).toContain('Escalated');
    expect(JSON.stringify(cards['approval pending, approver view'])).toContain('Approvals: 0 of 2');
    expect(JSON.stringify(cards['approval pending, approver view'])).toContain('2025-12-29T10:20:00Z');
  });
});
