// Every Adaptive Card the bot can send (approval and extension cards in every state and view,
// connection, reminder and notice cards, every reply kind) against Microsoft's official Adaptive
// Card 1.5 schema and the adaptivecards SDK (parse + validateProperties), with generated input;
// within Teams' message size budget; user text neutralised for Teams' markdown subset, checked
// with markdown-it (the CommonMark renderer the Adaptive Cards JS SDK uses for markdown).
import fc from 'fast-check';
import MarkdownIt from 'markdown-it';
import { describe, expect, it } from 'vitest';
import { activeCard, approvalCard, expiringCard, mdEsc, noticeCard, replyCard, type CardJson } from '../../src/adapters/teams/cards.js';
import { bigInventory, connections, reply, request, userText } from '../fixtures/arbitraries.js';
import { cardBytes, cardProblems, TEAMS_CARD_BUDGET_BYTES } from '../fixtures/adaptive-card-schema.js';

// A fixed amount of CPU work (generated cases): the timeout only catches a hang, and a loaded
// 2-core machine can take several times the 20 s default for it.
const CPU_BOUND_MS = 120_000;

const RUNS = Math.min(Number(process.env.FUZZ_RUNS ?? 100), 1000);

const valid = (card: CardJson) => {
  expect(cardProblems(card)).toEqual([]);
  expect(cardBytes(card)).toBeLessThanOrEqual(TEAMS_CARD_BUDGET_BYTES);
};

describe('Adaptive Cards against the official 1.5 schema (generated input)', { timeout: CPU_BOUND_MS }, () => {
  it('approval and extension cards: every status, both scopes, approver and read-only views, outcomes', () => {
    fc.assert(
      fc.property(
        request,
        fc.constantFrom('request' as const, 'extension' as const),
        fc.integer({ min: 1, max: 20 }),
        fc.boolean(),
        fc.array(fc.stringMatching(/^29:[A-Za-z0-9_-]{1,60}$/), { maxLength: 80 }),
        fc.array(fc.emailAddress(), { maxLength: 20 }),
        fc.constantFrom(undefined, 'approved' as const, 'denied' as const),
        (r, scope, quorum, canDecide, refreshUserIds, escalatedTo, outcome) =>
          valid(approvalCard(r, { scope, quorum, canDecide, refreshUserIds, escalatedTo, ...(outcome ? { outcome } : {}) })),
      ),
      { numRuns: RUNS },
    );
  });

  it('connection, reminder and notice cards', () => {
    fc.assert(
      fc.property(request, connections, fc.array(fc.integer({ min: 60_000, max: 86_400_000 }), { maxLength: 8 }), userText(2000, 1), (r, conns, options, headline) => {
        valid(activeCard(r, conns));
        valid(expiringCard(r, options));
        valid(noticeCard(r, headline, 'Attention'));
      }),
      { numRuns: RUNS },
    );
  });

  it('every reply kind, with lists of up to 300 VMs and 200 requests', () => {
    fc.assert(fc.property(reply, (x) => valid(replyCard(x))), { numRuns: RUNS });
  });

  it('the checks catch what they are for: an unknown element, a bad enum, a number where text goes, a card over budget', () => {
    expect(cardProblems({ type: 'AdaptiveCard', version: '1.5', body: [{ type: 'TextBlok', text: 'x' }] }).length).toBeGreaterThan(0);
    expect(cardProblems({ type: 'AdaptiveCard', version: '1.5', body: [{ type: 'TextBlock', text: 'x', color: 'Red' }] }).join()).toMatch(/schema: \/body\/0\/color/);
    expect(cardProblems({ type: 'AdaptiveCard', version: '1.5', body: [{ type: 'TextBlock', text: 42 }] }).join()).toMatch(/schema: \/body\/0\/text must be string/);
    expect(cardProblems({ type: 'AdaptiveCard', version: '1.5', body: [{ type: 'Input.Text', id: 'a' }, { type: 'Input.Text', id: 'a' }] }).join()).toMatch(/sdk validateProperties: Duplicate Id "a"/);
    expect(cardBytes(replyCard(bigInventory(300)))).toBeLessThanOrEqual(TEAMS_CARD_BUDGET_BYTES);
  });
});

describe('size budget', () => {
  it('`vms` with 300 VMs fits one Teams message: the first ones shown, the rest counted with where to see them', () => {
    const card = replyCard(bigInventory(300));
    const text = JSON.stringify(card);
    expect(cardProblems(card)).toEqual([]);
    expect(cardBytes(card)).toBeLessThanOrEqual(TEAMS_CARD_BUDGET_BYTES);
    expect(text).toContain('Configured (300)');
    expect(text).toContain('vm-prod-0 ');
    expect(text).toMatch(/…and \d+ more lines? not shown; the web console and GET \/api\/v1\/targets list them all/);
  });
});

describe("Teams' markdown subset: user text shows as typed, with no link, emphasis or list", { timeout: CPU_BOUND_MS }, () => {
  // Adaptive Card TextBlock markdown is bold, italic, bulleted and numbered lists and links; the
  // CommonMark rules outside it (code spans, strikethrough, entities, inline HTML) are off here.
  const md = new MarkdownIt('default', { html: false, linkify: false }).disable(['backticks', 'strikethrough', 'entity']);
  const FORBIDDEN = /<(a|em|strong|ul|ol|li|img)\b/;
  const shown = (html: string) =>
    html.replace(/<br>/g, ' ').replace(/<[^>]+>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  const norm = (s: string) => s.replace(/\u200b/g, '').replace(/\s+/g, ' ').trim();

  it('any text: markdown-it renders it with no markup, and the reader sees exactly what was typed', () => {
    fc.assert(
      fc.property(userText(300), (typed) => {
        const html = md.renderInline(mdEsc(typed));
        expect(html).not.toMatch(FORBIDDEN);
        expect(norm(shown(html))).toBe(norm(typed));
      }),
      { numRuns: RUNS * 10 },
    );
    // Lists are block-level: rendered as whole text.
    for (const typed of ['- item', '* item', '+ item', '1. item', '2) item', 'a\n\n- b', '  - c', '10. x']) expect(md.render(mdEsc(typed))).not.toMatch(FORBIDDEN);
  });

  it('escapes only what the subset needs: no backslash before ( ) [ ] ` ~ or an intraword _', () => {
    expect(mdEsc('INC_123 (prod) [ticket] `x` ~y~ a\\b')).toBe('INC_123 (prod) [ticket] `x` ~y~ a\\b');
    expect(mdEsc('[click](https://evil.example)')).toBe('[click]\u200b(https://evil.example)');
    expect(mdEsc('**now** _x_')).toBe('\\*\\*now\\*\\* \\_x\\_');
    expect(mdEsc('\\*')).toBe('\\\\\\*');
    expect(mdEsc('${injected}')).toBe('${injected}');
  });
});
