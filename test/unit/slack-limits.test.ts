// Every Slack builder against Block Kit's documented limits, with generated input (property-based,
// like the parser fuzzing): requests in every status with user text up to 3,000 characters of
// `&`, `<` and astral characters, up to 40 decisions, quorums up to 20, every reply kind with up to
// 300 VMs. The checker is the fake Slack's (test/fakes/block-kit.ts), written from Slack's
// reference independently of the builders. FUZZ_RUNS (default 300 here; a tenth of that, at least 50, for the big replies).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { approvalCard, clip, denyModal, esc, expiringMessage, extensionCard, noticeMessage, replyMessage, activeMessage, type SlackMessage } from '../../src/adapters/slack/blocks.js';
import { blockKitProblems, viewProblems } from '../fakes/block-kit.js';
import { bigInventory, connections, reply, request, userText } from '../fixtures/arbitraries.js';
import { p, rid, tn } from '../fixtures/ids.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const BIG_RUNS = Math.max(50, Math.floor(RUNS / 10));

const valid = (m: SlackMessage) => {
  expect(blockKitProblems(m.blocks)).toEqual([]);
  expect(m.text.length).toBeGreaterThan(0);
  // Every `<` left in mrkdwn (and the fallback text) opens one of our own date tokens: user text
  // cannot mention, link or break a token. plain_text is shown literally and needs no escaping.
  for (const text of [m.text, ...mrkdwnTexts(m.blocks)]) for (const hit of text.matchAll(/</g)) expect(text.slice(hit.index, hit.index + 7)).toBe('<!date^');
};

function mrkdwnTexts(node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(mrkdwnTexts);
  if (typeof node !== 'object' || node === null) return [];
  const o = node as Record<string, unknown>;
  if (o.type === 'mrkdwn' && typeof o.text === 'string') return [o.text];
  return Object.values(o).flatMap(mrkdwnTexts);
}

describe('Slack builders within Block Kit limits (generated input)', () => {
  it('approval cards: every status, quorum 1–20, up to 40 decisions, escalation', () => {
    fc.assert(
      fc.property(request, fc.integer({ min: 1, max: 20 }), fc.array(fc.emailAddress(), { maxLength: 20 }), (r, quorum, escalatedTo) => valid(approvalCard(r, { quorum, escalatedTo }))),
      { numRuns: RUNS },
    );
  });

  it('extension cards: pending, approved, denied', () => {
    fc.assert(
      fc.property(request, fc.integer({ min: 1, max: 20 }), fc.constantFrom(undefined, 'approved' as const, 'denied' as const), (r, quorum, outcome) => valid(extensionCard(r, { quorum }, outcome))),
      { numRuns: RUNS },
    );
  });

  it('connection DMs, reminders (repeated options too), notices', () => {
    fc.assert(
      fc.property(request, connections, fc.array(fc.constantFrom(60_000, 1_800_000, 3_600_000, 7_200_000), { maxLength: 30 }), userText(3000, 1), (r, conns, options, headline) => {
        valid(activeMessage(r, conns, true));
        const reminder = expiringMessage(r, options);
        valid(reminder);
        const ids = reminder.blocks.flatMap((b) => (b.type === 'actions' ? b.elements.map((e) => ('action_id' in e ? e.action_id : '')) : []));
        expect(ids).toEqual([...new Set(options)].map((ms) => `jit_extend_${ms}`));
        valid(noticeMessage(r, headline));
      }),
      { numRuns: RUNS },
    );
  });

  it('every reply kind, lists of up to 300 VMs and 200 requests included', () => {
    fc.assert(fc.property(reply, (x) => valid(replyMessage(x))), { numRuns: BIG_RUNS });
  });

  it('the deny modal', () => {
    fc.assert(fc.property(fc.stringMatching(/^r[0-9a-z]{9}$/), fc.constantFrom('request' as const, 'extension' as const), userText(500, 1), (id, scope, target) => {
      expect(viewProblems(denyModal(id, scope, target))).toEqual([]);
    }), { numRuns: RUNS });
  });
});

describe('what the limits do to the content', () => {
  const base = { id: rid('rk2m9qx7ab'), requester: p('alice@contoso.com'), target: tn('vm1'), targetId: '/x', ports: [{ port: 3389, protocol: 'tcp' as const }], source: '203.0.113.7/32', durationMs: 3_600_000, status: 'pending' as const, decisions: [], createdAt: 1_767_000_000_000, updatedAt: 1_767_000_000_000, approvalExpiresAt: 1_767_003_600_000, rules: [], origin: { via: 'slack' }, version: 1 };

  it('a field is cut after escaping, never inside an escape, and ends in …', () => {
    const card = approvalCard({ ...base, justification: '&'.repeat(500) }, { quorum: 1 });
    const f = JSON.stringify(card).match(/\*Justification\*\\n([^"]*)"/)![1]!;
    expect(f).toMatch(/^(&amp;)+…$/);
    expect(`*Justification*\n${f}`.length).toBeLessThanOrEqual(2000);
    expect(clip(esc('a&b'.repeat(2000)), 100)).toMatch(/(a|b|&amp;)…$/);
    expect(clip('x'.repeat(99) + '💥💥', 101)).toBe('x'.repeat(99) + '…');
  });

  it('quorum 12 with 15 decisions: the state shows the latest decisions and sums up the earlier ones in ≤ 10 elements', () => {
    const decisions = Array.from({ length: 15 }, (_, i) => ({ by: p(`approver${i}@contoso.com`), decision: i % 5 === 0 ? ('deny' as const) : ('approve' as const), at: base.createdAt + i }));
    const card = approvalCard({ ...base, decisions, escalatedAt: base.createdAt }, { quorum: 12 });
    const context = card.blocks.find((b) => b.type === 'context')!;
    expect(context.type === 'context' && context.elements.length).toBe(10);
    const text = JSON.stringify(context);
    expect(text).toContain('Approvals: 12 of 12');
    expect(text).toContain('…and 9 earlier decisions (7 approvals, 2 denials)');
    expect(text).toContain('approver14@contoso.com');
    expect(text).not.toContain('approver8@contoso.com');
  });

  it('300 VMs: `vms` is paged into code sections within the message, the rest counted', () => {
    const m = replyMessage(bigInventory(300));
    expect(blockKitProblems(m.blocks)).toEqual([]);
    expect(m.blocks.length).toBeLessThanOrEqual(50);
    expect(JSON.stringify(m.blocks)).toContain('vm-prod-0 ');
    expect(JSON.stringify(m.blocks)).toContain('vm-old-19');
  });
});
