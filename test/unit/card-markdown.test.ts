// The same replies as each platform shows them: Teams' Adaptive Card text through the console's
// markdown processor (the Teams subset: emphasis, lists, links, backslash escapes), Slack's
// Block Kit mrkdwn. Bot text reads the same everywhere, with no stray backslash; what a user typed
// never becomes a link or emphasis.
import { describe, expect, it } from 'vitest';
import { cardMarkdown } from '../../src/adapters/console/web/markdown.js';
import { hms } from '../../src/adapters/console/web/format.js';
import { replyMessage } from '../../src/adapters/slack/blocks.js';
import { activeCard, approvalCard, mdEsc, replyCard, type CardJson } from '../../src/adapters/teams/cards.js';
import type { Reply } from '../../src/core/reply.js';
import type { AccessRequest } from '../../src/core/types.js';
import { p, rid, tn } from '../fixtures/ids.js';

const req: AccessRequest = {
  id: rid('rk2m9qx7ab'), requester: p('alice@contoso.com'), target: tn('vm1'),
  targetId: '/subscriptions/sub1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/vm1',
  ports: [{ port: 3389, protocol: 'tcp' }], source: '203.0.113.7/32', durationMs: 7_200_000,
  justification: 'INC-1 [click](https://evil.example) **now** _x_ ~~y~~ `z` <b>h</b> ${injected}', status: 'pending', decisions: [],
  createdAt: 1_767_000_000_000, updatedAt: 1_767_000_000_000, approvalExpiresAt: 1_767_003_600_000,
  rules: [], origin: { via: 'teams' }, version: 1,
};

/** Every TextBlock text and fact value of a card. */
function texts(card: CardJson): string[] {
  const out: string[] = [];
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) return x.forEach(walk);
    if (!x || typeof x !== 'object') return;
    const o = x as Record<string, unknown>;
    if (o.type === 'TextBlock' && typeof o.text === 'string') out.push(o.text);
    if (o.type === 'FactSet') for (const f of o.facts as Array<{ title: string; value: string }>) out.push(f.title, f.value);
    for (const [k, v] of Object.entries(o)) if (k !== 'refresh' && k !== 'actions') walk(v);
  };
  walk(card.body);
  return out;
}
/** What a reader sees of card markdown: the rendered HTML without its tags. */
// (a zero-width space is invisible: mdEsc breaks link shapes with one)
const visible = (md: string) => cardMarkdown(md).replace(/<[^>]+>/g, '').replace(/\u200b/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&').trim();
const teamsSees = (card: CardJson) => texts(card).map(visible).join('\n');
const slackSees = (reply: Reply) => replyMessage(reply).blocks.map((b) => ('text' in b && b.text ? (typeof b.text === 'string' ? b.text : b.text.text) : '')).join('\n');

const help: Reply = { kind: 'help', examples: ['rdp vm1 1h from 203.0.113.7 reason "INC-1234"', 'list [mine|pending|active|all]', 'deny <id> [reason]'] };
const inventory: Reply = {
  kind: 'inventory',
  configured: [{ name: 'vm_prod_1', id: '/subscriptions/s/vm_prod_1', ports: '3389/tcp', approved7d: 2, address: 'vm1.contoso.example' }],
  notConfigured: [],
  unsupported: [],
};
const rejected: Reply = { kind: 'rejected', code: 'duration_too_long', message: 'vm1 allows at most 3h (policy "sub")', example: 'rdp vm1 3h from 203.0.113.7' };

describe('card markdown (Teams subset) and the Slack rendering of the same replies', () => {
  it('help, inventory and a refusal read the same in Teams and Slack, with no backslash', () => {
    for (const [reply, parts] of [
      [help, ['list [mine|pending|active|all]', 'deny <id> [reason]', 'reason "INC-1234"']],
      [inventory, ['Configured (1):', 'vm_prod_1', 'Not configured (0):']],
      [rejected, ['vm1 allows at most 3h (policy "sub")', 'rdp vm1 3h from 203.0.113.7']],
    ] as const) {
      const teams = teamsSees(replyCard(reply));
      const slack = slackSees(reply);
      for (const p of parts) {
        expect(teams).toContain(p);
        expect(slack.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')).toContain(p);
      }
      expect(teams).not.toContain('\\');
      expect(slack).not.toContain('\\');
      // Teams shows backticks literally (no code spans in its card markdown): none in the card.
      expect(JSON.stringify(replyCard(reply))).not.toContain('`');
    }
  });

  it('user text in a card is shown as typed: no link, emphasis, strike, code, HTML or template field', () => {
    const card = approvalCard(req, { scope: 'request', quorum: 1, canDecide: true, refreshUserIds: [] });
    const html = texts(card).map(cardMarkdown).join('\n');
    expect(html).not.toMatch(/<a |<strong>|<em>|<s>|<code>|<b>/);
    expect(teamsSees(card)).toContain('INC-1 [click](https://evil.example) **now** _x_ ~~y~~ `z` <b>h</b> ${injected}');
    // Only what starts markup is escaped: parentheses never need it.
    expect(mdEsc('Configured (3): a_b [x](y) *z* ~w~ `v` ${t} <id> <https://e.x> \\')).toBe('Configured (3): a_b [x]\u200b(y) \\*z\\* ~w~ `v` ${t} <id> <\u200bhttps://e.x> \\');
  });

  it('the markdown processor passes no raw HTML and no script link, and draws emoji as icons', () => {
    expect(cardMarkdown('<img src=x onerror=alert(1)> [a](javascript:alert(1))')).not.toMatch(/<img|href="javascript/);
    expect(cardMarkdown('**bold** [site](https://contoso.example)')).toBe('<p><strong>bold</strong> <a href="https://contoso.example">site</a></p>\n');
    const html = cardMarkdown('✅ Approved · ❌ Denied · 🔓 open · 🔒 closed · ⌛ · ⏳ · ⏫ · ⚠️');
    expect(html).not.toMatch(/[\u{1F300}-\u{1FAFF}\u2705\u274C\u23EB\u231B\u23F3\u26A0\uFE0F]/u);
    expect(html.match(/class="ico /g)).toHaveLength(8);
  });

  it('a decided approval card has no offer expiry; an open grant shows its connection line plainly', () => {
    const decided = approvalCard({ ...req, status: 'active', expiresAt: req.createdAt + 60_000, decisions: [{ by: p('bob@contoso.com'), decision: 'approve', at: req.createdAt }] }, { scope: 'request', quorum: 1, canDecide: false, refreshUserIds: [] });
    expect(teamsSees(decided)).not.toContain('Offer expires');
    const pending = approvalCard(req, { scope: 'request', quorum: 1, canDecide: false, refreshUserIds: [] });
    expect(teamsSees(pending)).toContain('Offer expires');
    const open = activeCard({ ...req, status: 'active', expiresAt: req.createdAt + 60_000 }, [{ host: 'db_1.contoso.example', port: 22, command: 'ssh -p 22 azure_user@db_1.contoso.example' }]);
    expect(texts(open).map(visible)).toContain('ssh -p 22 azure_user@db_1.contoso.example');
  });

  it('countdowns read h:mm:ss', () => {
    expect(hms(1_791_000)).toBe('0:29:51');
    expect(hms(3 * 3600_000 + 5_000)).toBe('3:00:05');
    expect(hms(400)).toBe('0:00:01');
    expect(hms(-5_000)).toBe('0:00:00');
  });
});
