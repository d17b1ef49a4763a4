// Block Kit for jit-bot's messages: pure functions from requests and replies to the JSON Slack's
// chat.postMessage / chat.update / response_url take. Everything a user typed (justification,
// names, reasons) is escaped, so `<!channel>`, `<@U…>` and links arrive as plain text.
import type { ChatMessage } from '../../app/chat/platform.js';
import type { ActionsBlock, Button, ContextBlock, KnownBlock, ModalView, MrkdwnElement, PlainTextElement } from '@slack/types';
import { formatDuration } from '../../core/duration.js';
import { isoSeconds } from '../../core/format.js';
import { approvalsLine, auditLine as auditLineOf, cardFallbackLine, cardSummary, cardText, cardTitle, decisionLine, earlierDecisions, escalatedLine, extensionOutcomeLine, outcomeLine, portsOf, requestLine, sourceOf, type Style } from '../../core/messages.js';
import { renderText, summarize, type Connection, type Reply } from '../../core/reply.js';
import type { AccessRequest, AuditEvent } from '../../core/types.js';

export type Block = KnownBlock;

export interface SlackMessage {
  text: string;
  blocks: Block[];
}

export const ACTIONS = {
  approve: 'jit_approve',
  deny: 'jit_deny',
  extApprove: 'jit_ext_approve',
  extDeny: 'jit_ext_deny',
  revoke: 'jit_revoke',
  extend: 'jit_extend',
} as const;

export const DENY_MODAL = 'jit_deny_modal';

/**
 * Block Kit's documented limits that our messages can reach (docs.slack.dev Block Kit reference,
 * as quoted in @slack/types): lengths in characters of the string as sent, so after escaping
 * (`&` → `&amp;` counts 5). Counted in UTF-16 units, which is never fewer than Slack's count.
 */
export const BLOCK_KIT = {
  blocksPerMessage: 50,
  sectionText: 3000,
  sectionFields: 10,
  sectionField: 2000,
  headerText: 150,
  contextElements: 10,
  contextText: 3000,
  actionsElements: 25,
  buttonText: 75,
  buttonValue: 2000,
  actionId: 255,
  confirmTitle: 100,
  confirmText: 300,
  confirmButton: 30,
  modalTitle: 24,
  inputLabel: 2000,
} as const;

/** Escapes the three characters Slack's mrkdwn treats as control characters. */
export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * Cuts text to at most `max` characters, ending in `…` when cut. Never cuts inside a surrogate
 * pair, an escape (`&amp;`) or a Slack token (`<!date^…|…>`), so what is shown stays readable.
 */
export function clip(text: string, max: number, mrkdwn = true): string {
  if (text.length <= max) return text;
  let cut = max - 1;
  const code = text.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut--;
  if (!mrkdwn) return text.slice(0, cut) + '…';
  const head = text.slice(0, cut);
  const amp = head.lastIndexOf('&');
  if (amp >= 0 && !head.includes(';', amp)) cut = amp;
  const lt = head.lastIndexOf('<');
  if (lt >= 0 && !head.includes('>', lt)) cut = Math.min(cut, lt);
  return text.slice(0, cut) + '…';
}

/** Text for a plain_text object: shown literally (no escaping), bounded, never empty. */
const plain = (text: string, max: number = BLOCK_KIT.buttonText): PlainTextElement => ({ type: 'plain_text', text: text.trim() ? clip(text, max, false) : '—', emoji: true });
/** An mrkdwn text object, bounded (after escaping: callers escape first), never empty. */
const md = (text: string, max: number = BLOCK_KIT.sectionText): MrkdwnElement => ({ type: 'mrkdwn', text: text.trim() ? clip(text, max) : '—' });
/** A field: a bold label and an escaped value, the value cut so the whole fits 2,000 characters. */
const field = (label: string, value: string): MrkdwnElement => md(`*${label}*\n${value}`, BLOCK_KIT.sectionField);

/** A date Slack renders in each reader's own time zone, with a UTC fallback. */
export const slackDate = (ms: number): string => `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} {time}|${isoSeconds(ms)}>`;

/** The shared sentences (core/messages.ts) in mrkdwn: escaped, dates in each reader's time zone. */
const STYLE: Style = { esc, date: slackDate, at: slackDate, strong: (t) => `*${t}*` };

function requestFields(r: AccessRequest): MrkdwnElement[] {
  return [
    field('Requester', esc(r.requester)),
    field('Target', esc(r.target)),
    field('Ports', esc(portsOf(r))),
    field('Source', esc(sourceOf(r))),
    field('Duration', `${formatDuration(r.durationMs)}${r.startAt ? ` from ${slackDate(r.startAt)}` : ''}`),
    field('Justification', r.justification ? esc(r.justification) : '_none given_'),
  ];
}


/**
 * A context block within Block Kit's 10 elements: `head` and `tail` lines are kept; of the
 * decision lines, the latest that fit are shown and the earlier ones summarised in one element.
 */
function stateContext(head: string[], decisions: AccessRequest['decisions'], tail: string[]): ContextBlock {
  const lines = decisions.map((d) => decisionLine(d, STYLE));
  const room = BLOCK_KIT.contextElements - head.length - tail.length;
  let shown = lines;
  if (lines.length > room) {
    const keep = Math.max(0, room - 1);
    shown = [earlierDecisions(decisions.slice(0, decisions.length - keep)), ...lines.slice(lines.length - keep)];
  }
  const elements = [...head, ...shown, ...tail].slice(0, BLOCK_KIT.contextElements).map((t) => md(t, BLOCK_KIT.contextText));
  return { type: 'context', block_id: 'jit_state', elements: elements.length ? elements : [md('—')] };
}

export interface CardOptions {
  quorum: number;
  /** Set when the request escalated: the original card says so. */
  escalatedTo?: string[];
}

const button = (b: { action_id: string; text: string; value: string; style?: 'primary' | 'danger' }): Button => ({
  type: 'button',
  action_id: b.action_id,
  text: plain(b.text),
  value: clip(b.value, BLOCK_KIT.buttonValue, false),
  ...(b.style ? { style: b.style } : {}),
});

/** An approval card's Approve / Deny buttons (each carrying the request id). */
function decideButtons(blockId: string, approve: { action_id: string; text: string }, denyAction: string, id: string): Block {
  return {
    type: 'actions',
    block_id: blockId,
    elements: [button({ ...approve, style: 'primary', value: id }), button({ action_id: denyAction, text: 'Deny', style: 'danger', value: id })],
  };
}

/**
 * The approval card for a request, in its current state: buttons only while it is pending.
 * The same function renders the first post and every `chat.update`, so all copies agree.
 */
export function approvalCard(r: AccessRequest, opts: CardOptions): SlackMessage {
  const blocks: Block[] = [
    { type: 'header', text: plain(cardTitle(r, 'request'), BLOCK_KIT.headerText) },
    { type: 'section', text: md(cardSummary(r, 'request', STYLE)), fields: requestFields(r) },
  ];
  const approvals = r.decisions.filter((d) => d.decision === 'approve').length;
  const head: string[] = [];
  if (r.status === 'pending') {
    head.push(`Approval offer expires ${slackDate(r.approvalExpiresAt)}`);
    if (opts.quorum > 1) head.push(approvalsLine(approvals, opts.quorum));
  }
  if (r.escalatedAt) head.push(escalatedLine(r.escalatedAt, opts.escalatedTo ?? [], STYLE));
  blocks.push(stateContext(head, r.decisions, r.status !== 'pending' ? [outcomeLine(r, STYLE).text] : []));
  if (r.status === 'pending') {
    blocks.push(decideButtons('jit_decide', { action_id: ACTIONS.approve, text: 'Approve' }, ACTIONS.deny, r.id));
  }
  return { text: esc(cardText(r, 'request', opts.quorum)), blocks };
}

/** The card asking approvers for an extension of an active grant. */
export function extensionCard(r: AccessRequest, opts: CardOptions, outcome?: 'approved' | 'denied'): SlackMessage {
  const ext = r.pendingExtension;
  const blocks: Block[] = [
    { type: 'header', text: plain(cardTitle(r, 'extension'), BLOCK_KIT.headerText) },
    { type: 'section', text: md(cardSummary(r, 'extension', STYLE)), fields: requestFields(r) },
  ];
  if (ext) {
    const n = ext.decisions.filter((d) => d.decision === 'approve').length;
    blocks.push(stateContext(opts.quorum > 1 ? [approvalsLine(n, opts.quorum)] : [], ext.decisions, []));
  } else {
    blocks.push(stateContext([extensionOutcomeLine(r, outcome, STYLE).text], [], []));
  }
  if (ext && r.status === 'active') {
    blocks.push(decideButtons('jit_decide_ext', { action_id: ACTIONS.extApprove, text: 'Approve extension' }, ACTIONS.extDeny, r.id));
  }
  return { text: esc(cardText(r, 'extension', opts.quorum, outcome)), blocks };
}

/** The requester's DM when the port is open: connection lines and a Revoke button. */
export function activeMessage(r: AccessRequest, connections: Connection[], firewall?: boolean): SlackMessage {
  const lines = connections.map((c) => `\`${esc(c.command)}\``).join('\n');
  const revoke: Button = {
    ...button({ action_id: ACTIONS.revoke, text: 'Close it now', style: 'danger', value: r.id }),
    confirm: {
      title: plain('Close the port?', BLOCK_KIT.confirmTitle),
      text: plain(`This closes ${r.target} for request ${r.id} now.`, BLOCK_KIT.confirmText),
      confirm: plain('Close it', BLOCK_KIT.confirmButton),
      deny: plain('Keep it open', BLOCK_KIT.confirmButton),
    },
  };
  return {
    text: esc(`Request ${r.id} is open: ${r.target} ${portsOf(r)} until ${isoSeconds(r.expiresAt ?? r.updatedAt)}. ${connections.map((c) => c.command).join(' ; ')}`),
    blocks: [
      { type: 'section', text: md(`🔓 *${esc(r.target)}* is open for you (${esc(portsOf(r))} from ${esc(sourceOf(r))}) until ${slackDate(r.expiresAt ?? r.updatedAt)}.`) },
      { type: 'section', text: md(`${firewall ? 'Connect through the firewall:' : 'Connect:'}\n${lines || '—'}`) },
      { type: 'actions', block_id: 'jit_grant', elements: [revoke] },
      { type: 'context', elements: [md(`Request ${esc(r.id)}`)] },
    ],
  };
}

/** The extension choices a reminder offers: each duration once, as many as one actions block holds. */
export function reminderOptions(optionsMs: number[]): number[] {
  return [...new Set(optionsMs)].slice(0, BLOCK_KIT.actionsElements);
}

/** The reminder before expiry, with one-click Extend buttons. */
export function expiringMessage(r: AccessRequest, optionsMs: number[]): SlackMessage {
  const buttons = reminderOptions(optionsMs).map((ms) => button({ action_id: `${ACTIONS.extend}_${ms}`, text: `Extend +${formatDuration(ms)}`, value: `${r.id}:${ms}` }));
  const blocks: Block[] = [
    { type: 'section', text: md(`⏳ Your access to *${esc(r.target)}* (${esc(r.id)}) closes ${slackDate(r.expiresAt ?? r.updatedAt)}.${buttons.length ? '' : ' It cannot be extended further under its policy.'}`) },
  ];
  if (buttons.length) blocks.push({ type: 'actions', block_id: 'jit_extend', elements: buttons } satisfies ActionsBlock);
  return { text: esc(`Your access to ${r.target} (${r.id}) closes at ${isoSeconds(r.expiresAt ?? r.updatedAt)}.`), blocks };
}

/** A short DM to the requester (denied, timed out, closed, extended, failed ...). */
export function noticeMessage(r: AccessRequest, headline: string): SlackMessage {
  return {
    text: esc(`${headline} (${r.id}, ${r.target})`),
    blocks: [
      { type: 'section', text: md(esc(headline)) },
      { type: 'context', elements: [md(requestLine(r, STYLE), BLOCK_KIT.contextText)] },
    ],
  };
}

/**
 * Lines shown as code, packed into as few sections as fit (3,000 characters each, fences
 * included); past the message's block budget the rest is counted, not shown.
 */
function codeSections(lines: string[], budget: number): Block[] {
  const out: Block[] = [];
  const max = BLOCK_KIT.sectionText - 6;
  let chunk: string[] = [];
  let size = 0;
  let i = 0;
  const flush = () => {
    if (chunk.length) out.push({ type: 'section', text: md('```' + chunk.join('\n') + '```') });
    chunk = [];
    size = 0;
  };
  for (; i < lines.length; i++) {
    const line = clip(lines[i]!, max);
    if (size + line.length + 1 > max) {
      flush();
      if (out.length >= budget - 1) break;
    }
    chunk.push(line);
    size += line.length + 1;
  }
  if (i >= lines.length) flush();
  if (i < lines.length) out.push({ type: 'context', elements: [md(`…and ${lines.length - i} more line${lines.length - i === 1 ? '' : 's'} not shown here; use the web console or the REST API for the full list.`)] });
  return out;
}

/** A command's answer, shown only to the person who typed it. */
export function replyMessage(reply: Reply): SlackMessage {
  const text = esc(renderText(reply, '/jit')).trim() || '—';
  if (reply.kind === 'active' || (reply.kind === 'status' && reply.request.status === 'active')) {
    return activeMessage(reply.request, reply.connections);
  }
  if (reply.kind === 'help') {
    return { text, blocks: [{ type: 'section', text: md(['*jit-bot commands*', ...reply.examples.map((e) => `\`/jit ${esc(e)}\``), ...text.split('\n').slice(reply.examples.length + 1)].join('\n')) }] };
  }
  if ((reply.kind === 'list' && reply.requests.length) || reply.kind === 'inventory' || reply.kind === 'audit' || reply.kind === 'policy') {
    const lines = reply.kind === 'list' ? reply.requests.map((r) => esc(summarize(r))) : text.split('\n');
    return { text: clip(text, BLOCK_KIT.sectionText), blocks: codeSections(lines, BLOCK_KIT.blocksPerMessage) };
  }
  return { text, blocks: [{ type: 'section', text: md(text) }] };
}

/** One line of the audit channel (core/messages.ts), in mrkdwn. */
export const auditLine = (e: AuditEvent): string => auditLineOf(e, { ...STYLE, clip });

/** The modal that asks an approver for an optional reason before denying. */
export function denyModal(requestId: string, scope: 'request' | 'extension', target: string): ModalView {
  return {
    type: 'modal',
    callback_id: DENY_MODAL,
    private_metadata: JSON.stringify({ requestId, scope }),
    title: plain(scope === 'extension' ? 'Deny extension' : 'Deny request', BLOCK_KIT.modalTitle),
    submit: plain('Deny', BLOCK_KIT.modalTitle),
    close: plain('Cancel', BLOCK_KIT.modalTitle),
    blocks: [
      { type: 'section', text: md(`Deny ${scope === 'extension' ? 'the extension of ' : ''}request *${esc(requestId)}* for *${esc(target)}*?`) },
      {
        type: 'input',
        block_id: 'reason',
        optional: true,
        label: plain('Reason (shown to the requester)', BLOCK_KIT.inputLabel),
        element: { type: 'plain_text_input', action_id: 'reason', multiline: true, max_length: DENY_REASON_MAX },
      },
    ],
  };
}

/** The longest deny reason the modal takes (Teams' card takes the same). */
export const DENY_REASON_MAX = 500;

/**
 * Plain text standing in for an approval card Slack would not show (the card was refused, or
 * the destination failed): what is asked, and how to decide with the slash command.
 */
export function cardFallbackText(m: SlackMessage, requestId: string, why: string): string {
  return clip(`${m.text}\n${esc(cardFallbackLine(requestId, why, '/jit'))}`, BLOCK_KIT.sectionText);
}

/** A message in Block Kit (a card's stand-in: text only). */
export function renderMessage(m: ChatMessage): { text: string; blocks?: Block[] } {
  switch (m.kind) {
    case 'approval':
    case 'card_fallback': {
      const c = m.card;
      const card = c.scope === 'extension' ? extensionCard(c.request, { quorum: c.quorum }, c.outcome) : approvalCard(c.request, { quorum: c.quorum, escalatedTo: c.escalatedTo });
      return m.kind === 'approval' ? card : { text: cardFallbackText(card, c.request.id, m.error) };
    }
    case 'notice':
      return noticeMessage(m.request, m.notice.headline);
    case 'active':
      return activeMessage(m.request, m.connections);
    case 'expiring':
      return expiringMessage(m.request, m.extendOptionsMs);
  }
}
