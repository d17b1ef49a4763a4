// Block Kit for jit-bot's messages: pure functions from requests and replies to the JSON Slack's
// chat.postMessage / chat.update / response_url take. Everything a user typed (justification,
// names, reasons) is escaped, so `<!channel>`, `<@U…>` and links arrive as plain text.
import { formatDuration } from '../../core/duration.js';
import { renderText, type Connection, type Reply } from '../../core/reply.js';
import { ANY } from '../../core/source.js';
import { describeStatus } from '../../core/state.js';
import type { AccessRequest, AuditEvent } from '../../core/types.js';

export interface TextObject {
  type: 'plain_text' | 'mrkdwn';
  text: string;
  emoji?: boolean;
}

export interface Button {
  type: 'button';
  action_id: string;
  text: TextObject;
  value: string;
  style?: 'primary' | 'danger';
  confirm?: {
    title: TextObject;
    text: TextObject;
    confirm: TextObject;
    deny: TextObject;
  };
}

export type Block =
  | { type: 'header'; text: TextObject }
  | { type: 'section'; block_id?: string; text?: TextObject; fields?: TextObject[] }
  | { type: 'context'; block_id?: string; elements: TextObject[] }
  | { type: 'actions'; block_id: string; elements: Button[] }
  | { type: 'divider' };

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

/** Escapes the three characters Slack's mrkdwn treats as control characters. */
export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Text for a plain_text object: no escaping needed (Slack shows it literally), but bounded. */
const plain = (text: string, max = 75): { type: 'plain_text'; text: string; emoji: boolean } => ({ type: 'plain_text', text: text.length > max ? text.slice(0, max - 1) + '…' : text, emoji: true });
const md = (text: string): { type: 'mrkdwn'; text: string } => ({ type: 'mrkdwn', text: text.length > 3000 ? text.slice(0, 2999) + '…' : text });

const isoUtc = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
/** A date Slack renders in each reader's own time zone, with a UTC fallback. */
export const slackDate = (ms: number): string => `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} {time}|${isoUtc(ms)}>`;

const portsOf = (r: AccessRequest) => r.ports.map((p) => `${p.port}/${p.protocol === '*' ? 'any' : p.protocol}`).join(', ');
const sourceOf = (r: AccessRequest) => (r.source === null ? 'not recorded yet' : r.source === ANY ? 'Any' : r.source);

function requestFields(r: AccessRequest): TextObject[] {
  const fields = [
    md(`*Requester*\n${esc(r.requester)}`),
    md(`*Target*\n${esc(r.target)}`),
    md(`*Ports*\n${esc(portsOf(r))}`),
    md(`*Source*\n${esc(sourceOf(r))}`),
    md(`*Duration*\n${formatDuration(r.durationMs)}${r.startAt ? ` from ${slackDate(r.startAt)}` : ''}`),
    md(`*Justification*\n${r.justification ? esc(r.justification) : '_none given_'}`),
  ];
  return fields;
}

/** Who decided what, when: one line per decision. */
function decisionLines(decisions: AccessRequest['decisions']): string[] {
  return decisions.map(
    (d) => `${d.decision === 'approve' ? '✅ Approved' : '❌ Denied'} by ${esc(d.by)} ${slackDate(d.at)}${d.reason ? `: “${esc(d.reason)}”` : ''}`,
  );
}

export interface CardOptions {
  quorum: number;
  /** Set when the request escalated: the original card says so. */
  escalatedTo?: string[];
}

/**
 * The approval card for a request, in its current state: buttons only while it is pending.
 * The same function renders the first post and every `chat.update`, so all copies agree.
 */
export function approvalCard(r: AccessRequest, opts: CardOptions): SlackMessage {
  const blocks: Block[] = [
    { type: 'header', text: plain(`Access request ${r.id}: ${r.target}`, 150) },
    { type: 'section', text: md(`*${esc(r.requester)}* asks for ${esc(portsOf(r))} on *${esc(r.target)}* for ${formatDuration(r.durationMs)}.`), fields: requestFields(r) },
  ];
  const approvals = r.decisions.filter((d) => d.decision === 'approve').length;
  const context: string[] = [];
  if (r.status === 'pending') {
    context.push(`Approval offer expires ${slackDate(r.approvalExpiresAt)}`);
    if (opts.quorum > 1) context.push(`Approvals: ${approvals} of ${opts.quorum}`);
  }
  if (r.escalatedAt) context.push(`⏫ Escalated ${slackDate(r.escalatedAt)}${opts.escalatedTo?.length ? ` to ${esc(opts.escalatedTo.join(', '))}` : ''}`);
  context.push(...decisionLines(r.decisions));
  if (r.status !== 'pending') context.push(outcomeLine(r));
  blocks.push({ type: 'context', block_id: 'jit_state', elements: context.map(md) });
  if (r.status === 'pending') {
    blocks.push({
      type: 'actions',
      block_id: 'jit_decide',
      elements: [
        { type: 'button', action_id: ACTIONS.approve, text: plain('Approve'), style: 'primary', value: r.id },
        { type: 'button', action_id: ACTIONS.deny, text: plain('Deny'), style: 'danger', value: r.id },
      ],
    });
  }
  const state = r.status === 'pending' ? `waiting for approval${opts.quorum > 1 ? ` (${approvals} of ${opts.quorum})` : ''}` : describeStatus(r);
  return { text: esc(`Access request ${r.id}: ${r.requester} asks for ${portsOf(r)} on ${r.target} for ${formatDuration(r.durationMs)}; ${state}`), blocks };
}

function outcomeLine(r: AccessRequest): string {
  switch (r.status) {
    case 'approved':
      return r.startAt ? `Approved; opens ${slackDate(r.startAt)}` : 'Approved; opening';
    case 'active':
      return `🔓 Open until ${slackDate(r.expiresAt ?? r.updatedAt)}`;
    case 'denied':
      return `❌ Denied ${slackDate(r.updatedAt)}${r.statusReason ? `: “${esc(r.statusReason)}”` : ''}`;
    case 'timed_out':
      return `⌛ Nobody decided in time; the request timed out ${slackDate(r.updatedAt)}`;
    case 'cancelled':
      return `Withdrawn by the requester ${slackDate(r.updatedAt)}`;
    case 'expired':
      return `🔒 Expired ${slackDate(r.updatedAt)}; the port is closed`;
    case 'revoked':
      return `🔒 Revoked ${slackDate(r.updatedAt)}; the port is closed`;
    case 'failed':
      return `⚠️ ${esc(describeStatus(r))}`;
    default:
      return esc(describeStatus(r));
  }
}

/** The card asking approvers for an extension of an active grant. */
export function extensionCard(r: AccessRequest, opts: CardOptions, outcome?: 'approved' | 'denied'): SlackMessage {
  const ext = r.pendingExtension;
  const blocks: Block[] = [
    { type: 'header', text: plain(`Extension of ${r.id}: ${r.target}`, 150) },
    {
      type: 'section',
      text: md(
        ext
          ? `*${esc(ext.by)}* asks to extend ${esc(portsOf(r))} on *${esc(r.target)}* by ${formatDuration(ext.addMs)}; it ends ${slackDate(r.expiresAt ?? r.updatedAt)} otherwise.`
          : `Extension of ${esc(r.id)} on *${esc(r.target)}*.`,
      ),
      fields: requestFields(r),
    },
  ];
  const context: string[] = [];
  if (ext) {
    const n = ext.decisions.filter((d) => d.decision === 'approve').length;
    if (opts.quorum > 1) context.push(`Approvals: ${n} of ${opts.quorum}`);
    context.push(...decisionLines(ext.decisions));
  } else if (outcome === 'approved') {
    context.push(`✅ Extension approved ${slackDate(r.updatedAt)}; open until ${slackDate(r.expiresAt ?? r.updatedAt)}`);
  } else if (outcome === 'denied') {
    context.push(`❌ Extension denied ${slackDate(r.updatedAt)}${r.statusReason ? `: “${esc(r.statusReason)}”` : ''}; the grant ends ${slackDate(r.expiresAt ?? r.updatedAt)}`);
  } else {
    context.push(esc(describeStatus(r)));
  }
  if (context.length) blocks.push({ type: 'context', block_id: 'jit_state', elements: context.map(md) });
  if (ext && r.status === 'active') {
    blocks.push({
      type: 'actions',
      block_id: 'jit_decide_ext',
      elements: [
        { type: 'button', action_id: ACTIONS.extApprove, text: plain('Approve extension'), style: 'primary', value: r.id },
        { type: 'button', action_id: ACTIONS.extDeny, text: plain('Deny'), style: 'danger', value: r.id },
      ],
    });
  }
  return { text: esc(`Extension of ${r.id} on ${r.target}: ${ext ? `+${formatDuration(ext.addMs)} waiting for approval` : outcome ?? describeStatus(r)}`), blocks };
}

/** The requester's DM when the port is open: connection lines and a Revoke button. */
export function activeMessage(r: AccessRequest, connections: Connection[], firewall?: boolean): SlackMessage {
  const lines = connections.map((c) => `\`${c.command}\``).join('\n');
  return {
    text: esc(`Request ${r.id} is open: ${r.target} ${portsOf(r)} until ${isoUtc(r.expiresAt ?? r.updatedAt)}. ${connections.map((c) => c.command).join(' ; ')}`),
    blocks: [
      { type: 'section', text: md(`🔓 *${esc(r.target)}* is open for you (${esc(portsOf(r))} from ${esc(sourceOf(r))}) until ${slackDate(r.expiresAt ?? r.updatedAt)}.`) },
      { type: 'section', text: md(`${firewall ? 'Connect through the firewall:' : 'Connect:'}\n${lines}`) },
      {
        type: 'actions',
        block_id: 'jit_grant',
        elements: [
          {
            type: 'button',
            action_id: ACTIONS.revoke,
            text: plain('Close it now'),
            style: 'danger',
            value: r.id,
            confirm: { title: plain('Close the port?'), text: plain(`This closes ${r.target} for request ${r.id} now.`, 300), confirm: plain('Close it'), deny: plain('Keep it open') },
          },
        ],
      },
      { type: 'context', elements: [md(`Request ${esc(r.id)}`)] },
    ],
  };
}

/** The reminder before expiry, with one-click Extend buttons. */
export function expiringMessage(r: AccessRequest, optionsMs: number[]): SlackMessage {
  const buttons: Button[] = optionsMs.map((ms) => ({ type: 'button', action_id: `${ACTIONS.extend}_${ms}`, text: plain(`Extend +${formatDuration(ms)}`), value: `${r.id}:${ms}` }));
  const blocks: Block[] = [
    { type: 'section', text: md(`⏳ Your access to *${esc(r.target)}* (${esc(r.id)}) closes ${slackDate(r.expiresAt ?? r.updatedAt)}.${buttons.length ? '' : ' It cannot be extended further under its policy.'}`) },
  ];
  if (buttons.length) blocks.push({ type: 'actions', block_id: 'jit_extend', elements: buttons });
  return { text: esc(`Your access to ${r.target} (${r.id}) closes at ${isoUtc(r.expiresAt ?? r.updatedAt)}.`), blocks };
}

/** A short DM to the requester (denied, timed out, closed, extended, failed ...). */
export function noticeMessage(r: AccessRequest, headline: string): SlackMessage {
  return {
    text: esc(`${headline} (${r.id}, ${r.target})`),
    blocks: [
      { type: 'section', text: md(esc(headline)) },
      { type: 'context', elements: [md(`Request ${esc(r.id)} · ${esc(r.target)} · ${esc(portsOf(r))} · ${esc(describeStatus(r))}`)] },
    ],
  };
}

/** A command's answer, shown only to the person who typed it. */
export function replyMessage(reply: Reply): SlackMessage {
  const text = esc(renderText(reply, '/jit'));
  if (reply.kind === 'active' || (reply.kind === 'status' && reply.request.status === 'active')) {
    return activeMessage(reply.request, reply.connections);
  }
  if (reply.kind === 'help') {
    return { text, blocks: [{ type: 'section', text: md(['*jit-bot commands*', ...reply.examples.map((e) => `\`/jit ${esc(e)}\``), ...text.split('\n').slice(reply.examples.length + 1)].join('\n')) }] };
  }
  if (reply.kind === 'list' || reply.kind === 'inventory') {
    return { text, blocks: [{ type: 'section', text: md(reply.kind === 'inventory' || reply.requests.length ? '```' + text + '```' : text) }] };
  }
  return { text, blocks: [{ type: 'section', text: md(text) }] };
}

/** One line of the audit channel: request id, actor, action, target, details. */
export function auditLine(e: AuditEvent): string {
  const details = Object.entries(e.details)
    .filter(([, v]) => v !== null && v !== '')
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
  return `\`${esc(e.requestId)}\` ${esc(isoUtc(e.time))} *${esc(e.action)}* by ${esc(e.actor)} on ${esc(e.target)}${details ? ` · ${esc(details)}` : ''}`;
}

/** The modal that asks an approver for an optional reason before denying. */
export function denyModal(requestId: string, scope: 'request' | 'extension', target: string) {
  return {
    type: 'modal' as const,
    callback_id: DENY_MODAL,
    private_metadata: JSON.stringify({ requestId, scope }),
    title: plain(scope === 'extension' ? 'Deny extension' : 'Deny request', 24),
    submit: plain('Deny', 24),
    close: plain('Cancel', 24),
    blocks: [
      { type: 'section' as const, text: md(`Deny ${scope === 'extension' ? 'the extension of ' : ''}request *${esc(requestId)}* for *${esc(target)}*?`) },
      {
        type: 'input' as const,
        block_id: 'reason',
        optional: true,
        label: plain('Reason (shown to the requester)'),
        element: { type: 'plain_text_input' as const, action_id: 'reason', multiline: true, max_length: 500 },
      },
    ],
  };
}
