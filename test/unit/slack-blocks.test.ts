import { describe, expect, it } from 'vitest';
import { ACTIONS, approvalCard, auditLine, esc, expiringMessage, extensionCard, replyMessage } from '../../src/adapters/slack/blocks.js';
import type { AccessRequest } from '../../src/core/types.js';
import { p, rid } from '../fixtures/ids.js';
import { pendingRequest } from '../fixtures/requests.js';

const base: AccessRequest = pendingRequest({
  id: rid('r012345678'),
  durationMs: 2 * 3600_000,
  justification: 'INC-1 <!channel> <@U024BOB> <https://evil.example|click> & more',
  origin: { via: 'slack' },
});

const all = (x: unknown) => JSON.stringify(x);
const actions = (m: { blocks: Array<{ type: string; elements?: unknown[] }> }) =>
  m.blocks.filter((b) => b.type === 'actions').flatMap((b) => (b.elements as Array<{ action_id: string; value: string }>).map((e) => [e.action_id, e.value]));

describe('Slack blocks', () => {
  it('escapes chat markup typed by users wherever it is shown', () => {
    expect(esc('<!here> & <@U1>')).toBe('&lt;!here&gt; &amp; &lt;@U1&gt;');
    const card = all(approvalCard(base, { quorum: 1 }));
    expect(card).not.toMatch(/<!channel>|<@U024BOB>|<https:\/\/evil/);
    expect(card).toContain('&lt;!channel&gt;');
    const denied = all(approvalCard({ ...base, status: 'denied', statusReason: '<!everyone>', decisions: [{ by: p('bob@contoso.com'), decision: 'deny', at: base.createdAt, reason: '<!everyone>' }] }, { quorum: 1 }));
    expect(denied).not.toContain('<!everyone>');
    const line = auditLine({ time: base.createdAt, actor: '<!channel>', action: 'request.created', requestId: base.id, target: 'vm1', details: { justification: '<@U1>' } });
    expect(line).not.toMatch(/<!channel>|<@U1>/);
    // The fallback text (notifications, screen readers) is mrkdwn too.
    const reply = replyMessage({ kind: 'rejected', code: 'parse', message: 'unknown word "<!here>"' });
    expect(all(reply)).not.toContain('<!here>');
  });

  it('a pending card carries Approve/Deny with only the request id; a decided card has no buttons and says who and when', () => {
    expect(actions(approvalCard(base, { quorum: 1 }))).toEqual([[ACTIONS.approve, base.id], [ACTIONS.deny, base.id]]);
    const approved = approvalCard({ ...base, status: 'active', expiresAt: base.createdAt + 7_200_000, decisions: [{ by: p('bob@contoso.com'), decision: 'approve', at: base.createdAt + 60_000 }] }, { quorum: 1 });
    expect(actions(approved)).toEqual([]);
    expect(all(approved)).toContain('Approved by bob@contoso.com <!date^1767000060^');
    expect(all(approved)).toContain('Open until');
  });

  it('shows the quorum count, the approval expiry, the duration and escalation', () => {
    const card = all(approvalCard({ ...base, decisions: [{ by: p('bob@contoso.com'), decision: 'approve', at: base.createdAt }], escalatedAt: base.createdAt + 1 }, { quorum: 2, escalatedTo: ['sec@contoso.com'] }));
    expect(card).toContain('Approvals: 1 of 2');
    expect(card).toContain(`Approval offer expires <!date^${base.approvalExpiresAt / 1000}^`);
    expect(card).toContain('2h');
    expect(card).toContain('Escalated');
    expect(card).toContain('sec@contoso.com');
  });

  it('a timed-out card says so without buttons', () => {
    const card = approvalCard({ ...base, status: 'timed_out' }, { quorum: 1 });
    expect(actions(card)).toEqual([]);
    expect(all(card)).toMatch(/timed out/);
  });

  it('extension cards use their own action ids; reminders offer one button per option', () => {
    const ext = extensionCard({ ...base, status: 'active', expiresAt: base.createdAt + 3_600_000, pendingExtension: { addMs: 1_800_000, by: base.requester, at: base.createdAt, decisions: [] } }, { quorum: 1 });
    expect(actions(ext)).toEqual([[ACTIONS.extApprove, base.id], [ACTIONS.extDeny, base.id]]);
    const rem = expiringMessage({ ...base, status: 'active', expiresAt: base.createdAt + 3_600_000 }, [1_800_000, 3_600_000]);
    expect(actions(rem)).toEqual([[`${ACTIONS.extend}_1800000`, `${base.id}:1800000`], [`${ACTIONS.extend}_3600000`, `${base.id}:3600000`]]);
    expect(all(expiringMessage({ ...base, status: 'active', expiresAt: 1 }, []))).toContain('cannot be extended further');
  });

  it('a rejection keeps the helpful example under /jit', () => {
    const m = replyMessage({ kind: 'rejected', code: 'duration_too_long', message: 'vm1 allows at most 3h on 3389', example: 'rdp vm1 3h' });
    expect(m.text).toBe('✗ vm1 allows at most 3h on 3389; try /jit rdp vm1 3h');
  });
});
