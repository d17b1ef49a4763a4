// Adaptive Cards for Teams (and the local console): the templates in cards/ expanded with
// adaptivecards-templating from requests and replies. Everything a user typed is escaped for the
// Adaptive Card markdown subset, so a justification cannot become a link or emphasis.
import { createRequire } from 'node:module';
import approvalTemplate from '../../../cards/approval.json' with { type: 'json' };
import messageTemplate from '../../../cards/message.json' with { type: 'json' };
import { formatDuration } from '../../core/duration.js';
import { isoSeconds } from '../../core/format.js';
import { approvalsLine, auditLine as auditLineOf, cardSummary, cardTitle, decisionLine, earlierDecisions, escalatedLine, extensionOutcomeLine, outcomeLine, portsOf, requestLine, sourceOf, type Style, type Tone } from '../../core/messages.js';
import { HELP_FORMS_LINE, HELP_ID_LINE, renderText, type Connection, type Reply } from '../../core/reply.js';
import type { AccessRequest, AuditEvent } from '../../core/types.js';
import type { ApprovalCard } from '../../app/chat/platform.js';
import { VERBS } from '../chat/verbs.js';

export type CardJson = Record<string, unknown>;

// Loaded untyped: the package's typings pull in adaptivecards' TypeScript sources, which do not
// compile under this project's strict ESM settings. The runtime API used is one class. Loaded on
// the first card, not at start: with its expression engine it is a quarter of the server's start-up
// CPU (docs/benchmarks.md, start-up).
type Templating = { Template: new (json: unknown) => { expand(context: { $root: unknown }): unknown } };
let templating: Templating | undefined;
const ACData = (): Templating => (templating ??= createRequire(import.meta.url)('adaptivecards-templating') as Templating);

// Imported, not read from disk at run time: the server's bundle (dist/main.js) carries them.
const TEMPLATES = { approval: approvalTemplate as CardJson, message: messageTemplate as CardJson };

export { VERBS };

const ZWSP = '\u200b';
const WORD = /[\p{L}\p{N}]/u;
const AUTOLINK = /^(?:[a-z][a-z0-9+.-]{1,31}:|[^\s<>@]+@[^\s<>@]+>)/i;

/**
 * Neutralises user text for Teams' markdown subset in TextBlocks and facts (bold, italic, lists,
 * links; nothing else), escaping only what that subset needs, because some Teams clients show a
 * backslash escape literally: `*` and an `_` at a word boundary are backslash-escaped (and a
 * backslash that would escape the next character, or break the line, is doubled); links (`](`), autolinks (`<scheme:…>`, `<a@b>`) and
 * list markers at a line start are broken with an invisible zero-width space. Template syntax
 * (`${…}`) needs nothing: the templating expands our templates, never the data put into them.
 */
export function mdEsc(s: string): string {
  const chars = [...s];
  const out = chars.map((c, i) => {
    if (c === '\\') return /^[!-/:-@[-`{-~\n]$/.test(chars[i + 1] ?? '') ? '\\\\' : c;
    if (c === '*') return '\\*';
    if (c === '_') return WORD.test(chars[i - 1] ?? '') && WORD.test(chars[i + 1] ?? '') ? c : '\\_';
    if (c === '(' && chars[i - 1] === ']') return `${ZWSP}(`;
    // Only what could start an autolink (`<https://…>`, `<a@b.c>`): a `<id>` in a command stays as typed (people copy it).
    if (c === '<' && AUTOLINK.test(chars.slice(i + 1, i + 80).join(''))) return `<${ZWSP}`;
    return c;
  });
  return out.join('').replace(/^([ \t]*)([-+]|\d{1,9}[.)])(?=[ \t]|$)/gm, `$1${ZWSP}$2`);
}

const iso = (ms: number | undefined) => (ms ? isoSeconds(ms) : '-');

function expand(template: CardJson, data: Record<string, unknown>): CardJson {
  return new (ACData().Template)(template).expand({ $root: data }) as CardJson;
}

/**
 * What one card may weigh (JSON bytes). Teams refuses a message over about 28 KB, activity
 * envelope included; this leaves room for the envelope.
 */
export const CARD_BUDGET_BYTES = 24 * 1024;
/** Buttons a host shows on one card (the default HostConfig's maxActions). */
const MAX_ACTIONS = 5;
const bytes = (card: CardJson) => Buffer.byteLength(JSON.stringify(card), 'utf8');

/**
 * The card built with as many of `lines` as fit the budget: all of them when they fit, else the
 * most that do (the first `keep` lines, or the last ones with `fromEnd`) and one line counting
 * the rest. `build(shown, more)` gets the lines to show and the count left out.
 */
function withinBudget<T>(lines: T[], build: (shown: T[], more: number) => CardJson, fromEnd = false): CardJson {
  const all = build(lines, 0);
  if (bytes(all) <= CARD_BUDGET_BYTES) return all;
  const take = (k: number) => (fromEnd ? lines.slice(lines.length - k) : lines.slice(0, k));
  let lo = 0;
  let hi = lines.length - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (bytes(build(take(mid), lines.length - mid)) <= CARD_BUDGET_BYTES) lo = mid;
    else hi = mid - 1;
  }
  return build(take(lo), lines.length - lo);
}

/** Caps one user-supplied text so a single value cannot take the card over its budget. */
const cap = (s: string, max = 2000) => (s.length > max ? `${[...s.slice(0, max - 1)].slice(0, -1).join('')}…` : s);

/** The shared sentences (core/messages.ts) in the Adaptive Card markdown subset, times in UTC. */
const STYLE: Style = { esc: (t) => mdEsc(cap(t)), date: iso, at: (ms) => `at ${iso(ms)}`, strong: (t) => t };
/** An Adaptive Card TextBlock color for each tone. */
export const COLORS: Record<Tone, string> = { default: 'Default', good: 'Good', warning: 'Warning', attention: 'Attention' };

export interface ApprovalView {
  scope: 'request' | 'extension';
  quorum: number;
  /** The viewer may decide now: Approve / Deny and the reason field are shown. */
  canDecide: boolean;
  /** Teams user ids (29:…) that get a personal, refreshed view. */
  refreshUserIds: string[];
  escalatedTo?: string[];
  /** For a finished extension card. */
  outcome?: 'approved' | 'denied';
}

/** The card of the shared notifier's data; `refreshUserIds`: the deciders' Teams ids, where known. */
export function cardOf(card: ApprovalCard, refreshUserIds: string[]): CardJson {
  return approvalCard(card.request, {
    scope: card.scope,
    quorum: card.quorum,
    canDecide: card.viewer?.canDecide ?? false,
    refreshUserIds,
    ...(card.outcome ? { outcome: card.outcome } : {}),
    ...(card.escalatedTo.length ? { escalatedTo: card.escalatedTo } : {}),
  });
}

export function approvalCard(r: AccessRequest, v: ApprovalView): CardJson {
  const ext = v.scope === 'extension';
  const decisions = ext ? r.pendingExtension?.decisions ?? [] : r.decisions;
  const decisionLines = decisions.map((d) => ({ text: decisionLine(d, STYLE) }));
  const head = r.escalatedAt && !ext ? [{ text: escalatedLine(r.escalatedAt, v.escalatedTo ?? [], STYLE) }] : [];
  const approvals = decisions.filter((d) => d.decision === 'approve').length;
  const pending = ext ? Boolean(r.pendingExtension && r.status === 'active') : r.status === 'pending';
  const { text: state, tone } = pending
    ? { text: v.quorum > 1 ? approvalsLine(approvals, v.quorum) : 'Waiting for approval', tone: 'default' as const }
    : ext
      ? extensionOutcomeLine(r, v.outcome, STYLE)
      : outcomeLine(r, STYLE);
  // Past the budget the latest decisions are shown and the earlier ones counted.
  return withinBudget(decisionLines, (shown, more) => {
    const lines = [...head, ...(more ? [{ text: earlierDecisions(decisions.slice(0, more)) }] : []), ...shown];
    return expand(TEMPLATES.approval, {
    id: r.id,
    scope: v.scope,
    refreshUserIds: v.refreshUserIds.slice(0, 60),
    title: cardTitle(r, v.scope),
    summary: cardSummary(r, v.scope, STYLE),
    requester: mdEsc(r.requester),
    target: mdEsc(r.target),
    ports: portsOf(r),
    source: sourceOf(r),
    duration: formatDuration(r.durationMs),
    justification: r.justification ? mdEsc(cap(r.justification, 3000)) : 'none given',
    offerExpires: pending && !ext ? iso(r.approvalExpiresAt) : '',
    lines,
    state,
    stateColor: COLORS[tone],
    canDecide: v.canDecide && pending,
    approveTitle: ext ? 'Approve extension' : 'Approve',
    approveVerb: ext ? VERBS.extApprove : VERBS.approve,
    denyVerb: ext ? VERBS.extDeny : VERBS.deny,
    });
  }, true);
}

interface MessageData {
  title: string;
  color?: string;
  text?: string;
  facts?: Array<{ title: string; value: string }>;
  lines?: Array<{ text: string; font?: string }>;
  actions?: Array<{ title: string; verb: string; style?: string; requestId: string; addMs?: number }>;
  /** Where to see lines left out when they do not all fit one card. */
  moreHint?: string;
}

const MORE_HINT = 'the web console and the REST API (/api/v1) show them all';

/** A card for any answer: title, text, facts, lines, buttons; lines past the size budget are counted, not shown. */
export function messageCard(m: MessageData): CardJson {
  const lines = (m.lines ?? []).map((l) => ({ text: cap(l.text), font: l.font ?? 'Default' }));
  return withinBudget(lines, (shown, more) =>
    expand(TEMPLATES.message, {
      title: cap(m.title),
      color: m.color ?? 'Default',
      text: cap(m.text ?? '', 4000),
      facts: (m.facts ?? []).map((f) => ({ title: cap(f.title, 200), value: cap(f.value) })),
      lines: more ? [...shown, { text: `…and ${more} more line${more === 1 ? '' : 's'} not shown; ${m.moreHint ?? MORE_HINT}`, font: 'Default' }] : shown,
      actions: (m.actions ?? []).slice(0, MAX_ACTIONS).map((a) => ({ style: 'default', addMs: 0, ...a })),
    }),
  );
}

export function activeCard(r: AccessRequest, connections: Connection[]): CardJson {
  return messageCard({
    title: `🔓 ${mdEsc(r.target)} is open for you until ${iso(r.expiresAt)}`,
    color: 'Good',
    text: `${portsOf(r)} from ${sourceOf(r)}. Request ${r.id}.`,
    // Monospace lines; no backticks (code spans are not in Teams' card markdown: they would show).
    lines: connections.map((c) => ({ text: mdEsc(c.command), font: 'Monospace' })),
    actions: [{ title: 'Close it now', verb: VERBS.revoke, style: 'destructive', requestId: r.id }],
  });
}

export function expiringCard(r: AccessRequest, optionsMs: number[]): CardJson {
  // Each choice once, and no more buttons than a host shows (HostConfig maxActions: 5).
  optionsMs = [...new Set(optionsMs)].slice(0, MAX_ACTIONS);
  return messageCard({
    title: `⏳ Your access to ${mdEsc(r.target)} closes at ${iso(r.expiresAt)}`,
    text: optionsMs.length ? `Request ${r.id}. Extend it:` : `Request ${r.id}. It cannot be extended further under its policy.`,
    actions: optionsMs.map((ms) => ({ title: `Extend +${formatDuration(ms)}`, verb: VERBS.extend, requestId: r.id, addMs: ms })),
  });
}

/** One line of the audit channel (core/messages.ts), in Teams markdown. */
export const auditLine = (e: AuditEvent): string => auditLineOf(e, { esc: mdEsc, strong: (t) => `**${t}**`, clip: cap });

export function noticeCard(r: AccessRequest, headline: string, color = 'Default'): CardJson {
  return messageCard({ title: mdEsc(headline), color, text: requestLine(r, STYLE) });
}

/** A command's answer as a card (Teams prefix `jit`). */
export function replyCard(reply: Reply): CardJson {
  switch (reply.kind) {
    case 'rejected':
      return messageCard({ title: '✗ Not done', color: 'Attention', text: mdEsc(reply.message), ...(reply.example ? { lines: [{ text: `Try: jit ${mdEsc(reply.example)}`, font: 'Monospace' }] } : {}) });
    case 'active':
      return activeCard(reply.request, reply.connections);
    case 'status':
      if (reply.request.status === 'active') return activeCard(reply.request, reply.connections);
      return messageCard({ title: `Request ${reply.request.id}`, text: mdEsc(renderText(reply, 'jit')) });
    case 'pending_approval':
      return messageCard({
        title: `Request ${reply.request.id} is waiting for approval`,
        text: `${mdEsc(reply.request.target)} ${portsOf(reply.request)} from ${sourceOf(reply.request)} for ${formatDuration(reply.request.durationMs)}.`,
        facts: [
          { title: 'Approvers', value: mdEsc(reply.approvers.join(', ') || 'none configured') },
          { title: 'Offer expires', value: iso(reply.request.approvalExpiresAt) },
        ],
      });
    case 'help':
      return messageCard({ title: 'jit-bot commands', lines: reply.examples.map((e) => ({ text: `jit ${mdEsc(e)}`, font: 'Monospace' })), text: `${reply.note ? `${mdEsc(reply.note)} ` : ''}${mdEsc(HELP_FORMS_LINE)}. ${mdEsc(HELP_ID_LINE)}. Durations: 30m, 2h, 1h30m or PT2H. Sources: an address or a range.` });
    case 'list':
      return messageCard({ title: reply.requests.length ? `Requests (${reply.scope})` : 'Nothing to show', lines: mdEsc(renderText(reply, 'jit')).split('\n').map((text) => ({ text, font: 'Monospace' })) });
    case 'info':
      return messageCard({ title: mdEsc(reply.message), text: '' });
    case 'inventory':
      return messageCard({ title: 'VMs', lines: mdEsc(renderText(reply, 'jit')).split('\n').map((text) => ({ text, font: 'Monospace' })), moreHint: 'the web console and GET /api/v1/targets list them all' });
    case 'policy':
    case 'audit': {
      const [title = '', ...rest] = renderText(reply, 'jit').split('\n');
      return messageCard({ title: mdEsc(title), lines: rest.map((text) => ({ text: mdEsc(text), font: 'Monospace' })) });
    }
    default:
      return messageCard({ title: mdEsc(renderText(reply, 'jit').split('\n')[0] ?? ''), text: '' });
  }
}
