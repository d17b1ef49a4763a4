// What every chat platform says about a request, in one place: the notices to the requester, the
// lines of an approval card, the audit channel's line and the stand-in for a card a platform
// refused. Plain sentences; a platform passes its `Style` (how it escapes typed text and writes
// a time) and renders the result in its own markup. Pure.
import { formatDuration } from './duration.js';
import { ANY } from './source.js';
import { isoSeconds, portLabel } from './format.js';
import { describeStatus } from './state.js';
import type { AccessRequest, AuditEvent, Decision } from './types.js';

/** How a line should look: neutral, good news, a warning, or something that went against the reader. */
export type Tone = 'default' | 'good' | 'warning' | 'attention';

/** How a platform writes the parts of a sentence. */
export interface Style {
  /** Escapes text someone typed (a name, a reason) for the platform's markup. */
  esc(text: string): string;
  /** An instant, as in `open until <date>`. */
  date(ms: number): string;
  /** An instant after a verb, as in `denied <at>` (`at 2026-…Z`, or a date token that reads alone). */
  at(ms: number): string;
  /** Emphasis (names in a card's summary); the text is escaped already. */
  strong(text: string): string;
}

export const portsOf = (r: AccessRequest): string => r.ports.map(portLabel).join(', ');
export const sourceOf = (r: AccessRequest): string => (r.source === null ? 'not recorded yet' : r.source === ANY ? 'Any' : r.source);

/** What a card is about: the request itself, or an extension of its grant. */
export type CardScope = 'request' | 'extension';

// ---------------------------------------------------------------- notices to the requester

/** The notifications that tell the requester something in a message of its own. */
export type NoticeKind = 'denied' | 'timed_out' | 'failed' | 'extended' | 'extension_denied' | 'expired' | 'revoked';

export interface Notice {
  /** The sentence. */
  headline: string;
  /** A few words for previews (a platform's notification summary). */
  title: string;
  tone: Tone;
}

/** The notice the requester gets when their request ends or their grant changes; `actor` decided it. */
export function requesterNotice(kind: NoticeKind, r: AccessRequest, actor: string): Notice {
  const closes = new Date(r.expiresAt ?? 0).toISOString();
  switch (kind) {
    case 'denied':
      return { headline: `Your request for ${r.target} was denied by ${actor}${r.statusReason ? `: “${r.statusReason}”` : ''}.`, title: 'Request denied', tone: 'attention' };
    case 'timed_out':
      return { headline: `Nobody approved your request for ${r.target} in time; it timed out. Nothing was opened.`, title: 'Request timed out', tone: 'warning' };
    case 'failed':
      return { headline: `Your access to ${r.target} could not be opened (${r.statusReason ?? 'network error'}). Nothing was left open.`, title: 'Access failed', tone: 'attention' };
    case 'extended':
      return { headline: `Your access to ${r.target} was extended; it now closes at ${closes}.`, title: 'Extended', tone: 'good' };
    case 'extension_denied':
      return { headline: `Your extension of ${r.target} was denied by ${actor}; the grant still closes at ${closes}.`, title: 'Extension denied', tone: 'attention' };
    case 'expired':
      return { headline: `Your access to ${r.target} expired; the port is closed.`, title: 'Access closed', tone: 'default' };
    case 'revoked':
      return { headline: `Your access to ${r.target} was closed by ${actor}; the port is closed.`, title: 'Access closed', tone: 'default' };
  }
}

/** The line under a notice, a connection message or a reminder that says which request it is about. */
export const requestLine = (r: AccessRequest, s: Pick<Style, 'esc'>): string => `Request ${s.esc(r.id)} · ${s.esc(r.target)} · ${s.esc(portsOf(r))} · ${s.esc(describeStatus(r))}`;

// ---------------------------------------------------------------- approval and extension cards

export const cardTitle = (r: AccessRequest, scope: CardScope): string => (scope === 'extension' ? `Extension of ${r.id}: ${r.target}` : `Access request ${r.id}: ${r.target}`);

/** The card's opening sentence: who asks for what. */
export function cardSummary(r: AccessRequest, scope: CardScope, s: Style): string {
  const ext = r.pendingExtension;
  if (scope === 'extension') {
    return ext
      ? `${s.strong(s.esc(ext.by))} asks to extend ${s.esc(portsOf(r))} on ${s.strong(s.esc(r.target))} by ${formatDuration(ext.addMs)}; it ends ${s.date(r.expiresAt ?? r.updatedAt)} otherwise.`
      : `Extension of ${s.esc(r.id)} on ${s.strong(s.esc(r.target))}.`;
  }
  return `${s.strong(s.esc(r.requester))} asks for ${s.esc(portsOf(r))} on ${s.strong(s.esc(r.target))} for ${formatDuration(r.durationMs)}${r.startAt ? ` from ${s.date(r.startAt)}` : ''}.`;
}

/** The card in one plain line (notification previews, screen readers, a stand-in for the card). */
export function cardText(r: AccessRequest, scope: CardScope, quorum: number, outcome?: 'approved' | 'denied'): string {
  if (scope === 'extension') {
    const ext = r.pendingExtension;
    return `Extension of ${r.id} on ${r.target}: ${ext ? `+${formatDuration(ext.addMs)} waiting for approval` : outcome ?? describeStatus(r)}`;
  }
  const approvals = r.decisions.filter((d) => d.decision === 'approve').length;
  const state = r.status === 'pending' ? `waiting for approval${quorum > 1 ? ` (${approvals} of ${quorum})` : ''}` : describeStatus(r);
  return `Access request ${r.id}: ${r.requester} asks for ${portsOf(r)} on ${r.target} for ${formatDuration(r.durationMs)}; ${state}`;
}

export const approvalsLine = (approvals: number, quorum: number): string => `Approvals: ${approvals} of ${quorum}`;

export const decisionLine = (d: Decision, s: Style): string =>
  `${d.decision === 'approve' ? '✅ Approved' : '❌ Denied'} by ${s.esc(d.by)} ${s.at(d.at)}${d.reason ? `: “${s.esc(d.reason)}”` : ''}`;

/** One line for the decisions a card has no room for. */
export function earlierDecisions(earlier: Decision[]): string {
  const approvals = earlier.filter((d) => d.decision === 'approve').length;
  const denials = earlier.length - approvals;
  return `…and ${earlier.length} earlier decision${earlier.length === 1 ? '' : 's'} (${approvals} approval${approvals === 1 ? '' : 's'}, ${denials} denial${denials === 1 ? '' : 's'})`;
}

export const escalatedLine = (at: number, to: string[], s: Style): string => `⏫ Escalated ${s.at(at)}${to.length ? ` to ${s.esc(to.join(', '))}` : ''}`;

/** The state line of a request card once nobody needs to decide any more. */
export function outcomeLine(r: AccessRequest, s: Style): { text: string; tone: Tone } {
  switch (r.status) {
    case 'approved':
      return { text: r.startAt ? `Approved; opens ${s.date(r.startAt)}` : 'Approved; opening', tone: 'good' };
    case 'active':
      return { text: `🔓 Open until ${s.date(r.expiresAt ?? r.updatedAt)}`, tone: 'good' };
    case 'denied':
      return { text: `❌ Denied ${s.at(r.updatedAt)}${r.statusReason ? `: “${s.esc(r.statusReason)}”` : ''}`, tone: 'attention' };
    case 'timed_out':
      return { text: `⌛ Nobody decided in time; the request timed out ${s.at(r.updatedAt)}`, tone: 'warning' };
    case 'cancelled':
      return { text: `Withdrawn by the requester ${s.at(r.updatedAt)}`, tone: 'default' };
    case 'expired':
      return { text: `🔒 Expired ${s.at(r.updatedAt)}; the port is closed`, tone: 'default' };
    case 'revoked':
      return { text: `🔒 Revoked ${s.at(r.updatedAt)}; the port is closed`, tone: 'default' };
    case 'failed':
      return { text: `⚠️ ${s.esc(describeStatus(r))}`, tone: 'warning' };
    default:
      return { text: s.esc(describeStatus(r)), tone: 'warning' };
  }
}

/** The state line of an extension card: how the extension ended, or the grant's state. */
export function extensionOutcomeLine(r: AccessRequest, outcome: 'approved' | 'denied' | undefined, s: Style): { text: string; tone: Tone } {
  const ends = s.date(r.expiresAt ?? r.updatedAt);
  if (outcome === 'approved') return { text: `✅ Extension approved ${s.at(r.updatedAt)}; open until ${ends}`, tone: 'good' };
  if (outcome === 'denied') return { text: `❌ Extension denied ${s.at(r.updatedAt)}${r.statusReason ? `: “${s.esc(r.statusReason)}”` : ''}; the grant ends ${ends}`, tone: 'attention' };
  return { text: s.esc(describeStatus(r)), tone: 'default' };
}

/**
 * What stands in for an approval card a platform would not show (it refused the card, or the
 * destination failed): what is asked, and how to decide by command (`prefix`: `/jit`, `jit`).
 */
export const cardFallbackLine = (requestId: string, why: string, prefix: string): string =>
  `⚠️ The approval card could not be shown here (${why}). Decide with \`${prefix} approve ${requestId}\` or \`${prefix} deny ${requestId} reason "…"\`; \`${prefix} status ${requestId}\` shows it all.`;

// ---------------------------------------------------------------- the audit channel

/** One line of the audit channel: request id, time, action, actor, target, details (cut at 1,000 characters). */
export function auditLine(e: AuditEvent, s: Pick<Style, 'esc' | 'strong'> & { clip(text: string, max: number): string }): string {
  const details = Object.entries(e.details)
    .filter(([, v]) => v !== null && v !== '')
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
  return `\`${s.esc(e.requestId)}\` ${isoSeconds(e.time)} ${s.strong(s.esc(e.action))} by ${s.esc(e.actor)} on ${s.esc(e.target)}${details ? ` · ${s.clip(s.esc(details), 1000)}` : ''}`;
}
