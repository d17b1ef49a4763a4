// Approval workflow rules beyond "who may approve": justification rules, auto-approval rules
// (principals, ports, duration, time windows, on-call), escalation and expiry reminders. Pure:
// the on-call check is a question the caller answers (an adapter asks PagerDuty).
import { JitError } from './errors.js';
import type { ChannelRouting, PortSpec, PrincipalId, PrincipalRef, TargetName } from './types.js';

export interface JustificationRule {
  required: boolean;
  /** A regular expression the justification must match (e.g. `^(INC|CHG)-\d+`). */
  pattern?: string;
  /** Shown when it does not match: `a ticket id like INC-4711`. */
  hint?: string;
}

export const DEFAULT_JUSTIFICATION: JustificationRule = { required: false };

export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';
export const WEEKDAYS: readonly Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

export interface TimeWindow {
  days: Weekday[];
  /** `HH:MM`, inclusive. */
  from: string;
  /** `HH:MM`, exclusive; `24:00` for end of day. */
  to: string;
  /** IANA time zone, e.g. `Europe/Berlin`. */
  timeZone: string;
}

export interface AutoApproveRule {
  name: string;
  /** Principals and `group:` refs; empty = anyone who may request. */
  principals: PrincipalRef[];
  /** Ports the rule covers; empty = any port the policy allows. */
  ports: PortSpec[];
  /** Longest grant the rule approves. */
  maxDurationMs?: number;
  /** When the rule applies; empty = always. */
  windows: TimeWindow[];
  /** The requester must be on call in one of these (PagerDuty) schedules. */
  onCallSchedules: string[];
}

export interface EscalationRule {
  /** Delay after which a still-pending request goes to the next approvers. */
  afterMs: number;
  approvers: PrincipalRef[];
}

export interface ReminderRule {
  /** How long before expiry the requester is reminded (0 = never). */
  beforeMs: number;
  /** Extension choices offered on the reminder. */
  extendOptionsMs: number[];
}

export const DEFAULT_REMINDER: ReminderRule = { beforeMs: 10 * 60_000, extendOptionsMs: [30 * 60_000, 3600_000] };

/** Checks the justification against the rule; throws a JitError with the hint. */
export function checkJustification(rule: JustificationRule, text: string | undefined, example: string): void {
  const given = text?.trim() ?? '';
  const hint = rule.hint ? ` (${rule.hint})` : '';
  if (!given) {
    if (rule.required) throw new JitError('justification_required', `this target needs a reason${hint}`, `${example} reason "${sampleReason(rule)}"`);
    return;
  }
  if (rule.pattern && !new RegExp(rule.pattern).test(given)) {
    throw new JitError('bad_justification', `the reason "${given}" does not match what this target needs${hint || ` (${rule.pattern})`}`, `${example} reason "${sampleReason(rule)}"`);
  }
}

function sampleReason(rule: JustificationRule): string {
  if (rule.pattern && /INC/.test(rule.pattern)) return 'INC-4711 disk full';
  if (rule.pattern && /CHG/.test(rule.pattern)) return 'CHG-1234 patching';
  return 'INC-4711 disk full';
}

/** The local weekday and minutes since midnight of `at` in `timeZone`. */
export function localTime(at: number, timeZone: string): { day: Weekday; minutes: number } {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(at));
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  const day = get('weekday').toLowerCase().slice(0, 3) as Weekday;
  return { day, minutes: Number(get('hour')) * 60 + Number(get('minute')) };
}

const minutesOf = (hhmm: string): number => {
  const [h, m] = hhmm.split(':').map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
};

export function inWindow(w: TimeWindow, at: number): boolean {
  const { day, minutes } = localTime(at, w.timeZone);
  return w.days.includes(day) && minutes >= minutesOf(w.from) && minutes < minutesOf(w.to);
}

export interface AutoApproveAsk {
  requester: PrincipalId;
  ports: PortSpec[];
  durationMs: number;
  at: number;
}

/**
 * The first rule whose static conditions (principal, ports, duration, time window) hold. Rules
 * that also need on-call are returned with `needsOnCall`; the caller asks and, on any failure,
 * falls back to human approval.
 */
export function matchAutoApproval(
  rules: AutoApproveRule[],
  ask: AutoApproveAsk,
  isMember: (ref: PrincipalRef, principal: PrincipalId) => boolean,
): AutoApproveRule[] {
  return rules.filter((r) => {
    if (r.principals.length > 0 && !r.principals.some((ref) => isMember(ref, ask.requester))) return false;
    if (r.ports.length > 0 && !ask.ports.every((p) => r.ports.some((q) => q.port === p.port && (q.protocol === p.protocol || q.protocol === '*')))) return false;
    if (r.maxDurationMs !== undefined && ask.durationMs > r.maxDurationMs) return false;
    if (r.windows.length > 0 && !r.windows.some((w) => inWindow(w, ask.at))) return false;
    return true;
  });
}

/** Extension choices that still fit within the whole grant's maximum. */
export function extendOptions(rule: ReminderRule, activatedAt: number, expiresAt: number, maxMs: number): number[] {
  const room = activatedAt + maxMs - expiresAt;
  return rule.extendOptionsMs.filter((ms) => ms <= room);
}

/** Where one chat platform sends an approval request: a channel, DMs to the approvers, or both. */
export interface PlatformRoute {
  channel?: string;
  dm: boolean;
}

export interface ApprovalRoute {
  /** The routing entry that matched (`*` for the fallback, `default` without routing). */
  matched: string;
  /** Per chat platform, by its name: where the request goes there. */
  platforms: Record<string, PlatformRoute>;
  /** For a platform `platforms` does not name: without routing, the approvers' DMs; after a match, nothing. */
  others?: PlatformRoute;
}

/** Where the approval request goes on one platform (undefined: not there). */
export function routeOn(route: ApprovalRoute | undefined, platform: string): PlatformRoute | undefined {
  if (!route) return undefined;
  return Object.hasOwn(route.platforms, platform) ? route.platforms[platform] : route.others;
}

/** One routing entry: conditions (all must hold; none = fallback `*`) and destinations per platform. */
export interface RoutingRule {
  name: string;
  targets: TargetName[];
  ports: PortSpec[];
  /** Role names the requester holds at the target (`JIT Requester`, `JIT Admin` ...). */
  roles: string[];
  platforms: Record<string, PlatformRoute>;
}

export interface RouteAsk {
  target: TargetName;
  ports: PortSpec[];
  requesterRoles: string[];
}

/**
 * The first routing entry whose conditions hold, in file order; an entry without conditions
 * (or named `*`) is the fallback. Without routing, approvals go to the policy's approval channel
 * per platform and, where none is set, to the approvers' DMs.
 */
export function routeApproval(routing: RoutingRule[], ask: RouteAsk, channels: ChannelRouting): ApprovalRoute {
  const specific = routing.filter((r) => r.name !== '*' && (r.targets.length || r.ports.length || r.roles.length));
  const fallback = routing.find((r) => r.name === '*' || (!r.targets.length && !r.ports.length && !r.roles.length));
  const hit = specific.find(
    (r) =>
      (r.targets.length === 0 || r.targets.includes(ask.target)) &&
      (r.ports.length === 0 || ask.ports.some((p) => r.ports.some((q) => q.port === p.port && (q.protocol === p.protocol || q.protocol === '*')))) &&
      (r.roles.length === 0 || ask.requesterRoles.some((role) => r.roles.includes(role))),
  ) ?? fallback;
  if (hit) return { matched: hit.name, platforms: { ...hit.platforms } };
  const platforms: Record<string, PlatformRoute> = {};
  for (const [platform, c] of Object.entries(channels)) if (c.approvals) platforms[platform] = { channel: c.approvals, dm: false };
  return { matched: 'default', platforms, others: { dm: true } };
}

const MAX_START_AHEAD_MS = 7 * 86_400_000;

/** Milliseconds to add to UTC to get local wall-clock time in `timeZone` at instant `at`. */
function tzOffset(at: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(new Date(at));
  const n = (t: string) => Number(parts.find((p) => p.type === t)?.value ?? 0);
  return Date.UTC(n('year'), n('month') - 1, n('day'), n('hour'), n('minute'), n('second')) - Math.floor(at / 1000) * 1000;
}

/** The instant a local wall-clock time (as a UTC-fields timestamp) has in `timeZone`. */
function fromLocal(localAsUtc: number, timeZone: string): number {
  let guess = localAsUtc - tzOffset(localAsUtc, timeZone);
  guess = localAsUtc - tzOffset(guess, timeZone);
  return guess;
}

/**
 * Resolves `at 14:00` (the next 14:00 in `timeZone`) or `at 2026-11-25T14:00[Z|±hh:mm]` to an
 * instant. Refuses times in the past and more than 7 days ahead.
 */
export function resolveStart(text: string, now: number, timeZone: string, example: string): number {
  let at: number;
  const hm = /^(\d{1,2}):(\d{2})$/.exec(text);
  if (hm) {
    const local = now + tzOffset(now, timeZone);
    const d = new Date(local);
    const todayLocal = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), Number(hm[1]), Number(hm[2]));
    at = fromLocal(todayLocal, timeZone);
    if (at <= now) at = fromLocal(todayLocal + 86_400_000, timeZone);
  } else if (/(Z|[+-]\d{2}:\d{2})$/.test(text)) {
    at = Date.parse(text);
  } else {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(text);
    at = m ? fromLocal(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0)), timeZone) : NaN;
  }
  if (Number.isNaN(at)) throw new JitError('bad_start', `"${text}" is not a start time`, example);
  if (at <= now) throw new JitError('bad_start', `${text} (${new Date(at).toISOString()}) is in the past`, example);
  if (at - now > MAX_START_AHEAD_MS) throw new JitError('bad_start', `${text} is more than 7 days ahead; request closer to the time`, example);
  return at;
}
