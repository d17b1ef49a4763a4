// The policy model: targets, scoped policies that inherit downwards, and the check of a
// request against the effective policy. Pure.
import { JitError } from './errors.js';
import { parseTargetName, principalId } from './ids.js';
import { portLabel } from './format.js';
import { formatDuration } from './duration.js';
import { ANY, describePrefixes, parseSource, sourceAllowed } from './source.js';
import { DEFAULT_JUSTIFICATION, DEFAULT_REMINDER, type AutoApproveRule, type JustificationRule, type ReminderRule, type RoutingRule } from './workflow.js';
import type {
  ApprovalRule,
  ChannelRouting,
  Os,
  PortRule,
  PortSpec,
  PrincipalId,
  PrincipalRef,
  Target,
} from './types.js';

export { describePolicy, type PolicyLine } from './policy-describe.js';
export { withNetworkPolicies, type NetworkPolicies } from './network-policies.js';

export type RoleName = 'JIT Reader' | 'JIT Requester' | 'JIT Approver' | 'JIT Admin';
export const ROLE_NAMES: readonly RoleName[] = ['JIT Reader', 'JIT Requester', 'JIT Approver', 'JIT Admin'];

export interface RoleAssignment {
  principal: PrincipalRef;
  role: RoleName;
  scope: string;
}

export interface PolicyDef {
  name: string;
  scope: string;
  ports?: PortRule[];
  approval?: Partial<ApprovalRule>;
  channels?: ChannelRouting;
  justification?: Partial<JustificationRule>;
  /** Replaced as a whole list by a deeper scope that sets it. */
  autoApprove?: AutoApproveRule[];
  reminder?: Partial<ReminderRule>;
  /** Replaced as a whole list by a deeper scope that sets it. */
  routing?: RoutingRule[];
  /** IANA time zone for `at 14:00` when the platform does not say the requester's. */
  timeZone?: string;
}

/** A principal's user id on each chat platform that names one, keyed by the platform's name. */
export type PrincipalInfo = Record<string, string>;

/** Everything the policy file says: who is who, who may do what where, what each target allows. */
export interface PolicyBook {
  principals: Record<PrincipalId, PrincipalInfo>;
  groups: Record<string, PrincipalId[]>;
  roles: RoleAssignment[];
  targets: Record<string, Target>;
  policies: PolicyDef[];
  /**
   * Groups backed by a directory (an Entra ID group, a Slack user group): their members come from
   * it, added to the literal list in `groups` (see core/directory.ts). Absent: literal lists only.
   */
  directory?: Record<string, GroupSource[]>;
  /**
   * Directory groups whose membership is not known now (never read, or the last good read is
   * older than the TTL), with why. Their directory members hold no rights meanwhile (fail closed).
   */
  unresolvedGroups?: Record<string, string>;
}

/**
 * The principals listed under `principals` with their platform accounts. The keys were parsed when
 * the book was made; they are parsed again here because an object's keys come back as strings.
 */
export function listedPrincipals(book: PolicyBook): [PrincipalId, PrincipalInfo][] {
  return Object.entries(book.principals).map(([p, info]) => [principalId(p), info]);
}

/** Where a policy group's members come from besides its literal list. */
export interface GroupSource {
  /** The directory, as the policy file names it (`entra`, `slack`). */
  kind: string;
  /** The group's id in that directory (an object id, a user group id). */
  id: string;
}

export const DEFAULT_MAX_DURATION_MS = 3 * 3600_000;
export const DEFAULT_APPROVAL: ApprovalRule = {
  required: true,
  approvers: [],
  quorum: 1,
  timeoutMs: 3600_000,
  selfApproval: false,
  denyQuorum: 1,
};

/** Azure JIT's defaults per OS: Windows 3389, Linux 22, source Any, 3 hours. */
export function osDefaultPorts(os: Os): PortRule[] {
  const port = os === 'windows' ? 3389 : 22;
  return [{ port, protocol: 'tcp', allowedSourcePrefixes: [ANY], maxDurationMs: DEFAULT_MAX_DURATION_MS }];
}

/** ARM ids compare case-insensitively, and a scope covers itself and everything below it. */
export function normalizeScope(scope: string): string {
  const s = scope.trim().toLowerCase().replace(/\/+$/, '');
  return s === '' ? '/' : s;
}

export function scopeCovers(scope: string, resourceId: string): boolean {
  const s = normalizeScope(scope);
  const r = normalizeScope(resourceId);
  return s === '/' || r === s || r.startsWith(s + '/');
}

export function scopeDepth(scope: string): number {
  const s = normalizeScope(scope);
  return s === '/' ? 0 : s.split('/').length - 1;
}

export interface EffectivePolicy {
  target: Target;
  ports: PortRule[];
  approval: ApprovalRule;
  channels: ChannelRouting;
  justification: JustificationRule;
  autoApprove: AutoApproveRule[];
  reminder: ReminderRule;
  routing: RoutingRule[];
  timeZone: string;
  /** Where each value came from: a policy name, or `default`. Keys: `ports`, `approval.<field>`, `channels.<platform>.<kind>`. */
  origin: Record<string, string>;
}

/** Policies covering the target, shallow first; a deeper scope overrides what it sets. */
export function effectivePolicy(book: PolicyBook, target: Target): EffectivePolicy {
  const covering = book.policies
    .map((p, index) => ({ p, index }))
    .filter(({ p }) => scopeCovers(p.scope, target.id))
    .sort((a, b) => scopeDepth(a.p.scope) - scopeDepth(b.p.scope) || a.index - b.index)
    .map(({ p }) => p);

  let ports = osDefaultPorts(target.os);
  const approval: ApprovalRule = { ...DEFAULT_APPROVAL };
  const channels: ChannelRouting = {};
  const justification: JustificationRule = { ...DEFAULT_JUSTIFICATION };
  const reminder: ReminderRule = { ...DEFAULT_REMINDER };
  let autoApprove: AutoApproveRule[] = [];
  let routing: RoutingRule[] = [];
  let timeZone = 'UTC';
  const origin: Record<string, string> = { ports: `default (${target.os})`, autoApprove: 'default' };
  const merge = <T extends object>(into: T, from: Partial<T>, key: string, name: string) => {
    for (const [k, v] of Object.entries(from)) {
      if (v === undefined) continue;
      (into as Record<string, unknown>)[k] = v;
      origin[`${key}.${k}`] = name;
    }
  };
  for (const key of Object.keys(DEFAULT_APPROVAL)) origin[`approval.${key}`] = 'default';

  for (const p of covering) {
    if (p.ports) {
      ports = p.ports;
      origin.ports = p.name;
    }
    if (p.approval) {
      for (const [k, v] of Object.entries(p.approval) as [keyof ApprovalRule, ApprovalRule[keyof ApprovalRule]][]) {
        if (v === undefined) continue;
        (approval as unknown as Record<string, unknown>)[k] = v;
        origin[`approval.${k}`] = p.name;
      }
    }
    if (p.justification) merge(justification, p.justification, 'justification', p.name);
    if (p.reminder) merge(reminder, p.reminder, 'reminder', p.name);
    if (p.timeZone) {
      timeZone = p.timeZone;
      origin.timeZone = p.name;
    }
    if (p.routing) {
      routing = p.routing;
      origin.routing = p.name;
    }
    if (p.autoApprove) {
      autoApprove = p.autoApprove;
      origin.autoApprove = p.name;
    }
    if (p.channels) {
      for (const [platform, c] of Object.entries(p.channels)) {
        channels[platform] = { ...own(channels, platform), ...c };
        for (const kind of Object.keys(c)) origin[`channels.${platform}.${kind}`] = p.name;
      }
    }
  }
  return { target, ports, approval, channels, justification, autoApprove, reminder, routing, timeZone, origin };
}

/**
 * A record's own entry, never an inherited one: `targets.constructor` or `groups.__proto__` must
 * be "no such target / group", not Object.prototype's members. Every look-up by a name someone
 * typed (or a stored copy of one) goes through here.
 */
export function own<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** The target named `name` (case-insensitive: parsed as a target name), own entries only. */
export function findTarget(book: PolicyBook, name: string): Target | undefined {
  const key = parseTargetName(name);
  return key === undefined ? undefined : own(book.targets, key);
}

export { portLabel };

function ruleFor(policy: EffectivePolicy, want: PortSpec): PortRule | undefined {
  return policy.ports.find(
    (r) => r.port === want.port && (r.protocol === want.protocol || r.protocol === '*'),
  );
}

/** The verb someone would type for these ports on this target (for examples). */
export function exampleVerb(ports: PortSpec[]): string {
  const only = ports.length === 1 ? ports[0] : undefined;
  if (only && only.protocol === 'tcp' && only.port === 3389) return 'rdp';
  if (only && only.protocol === 'tcp' && only.port === 22) return 'ssh';
  if (ports.length === 2 && ports.every((p) => p.protocol === 'tcp') && ports.some((p) => p.port === 5985) && ports.some((p) => p.port === 5986))
    return 'winrm';
  return `port ${ports.map(portLabel).join(',')}`;
}

export interface AccessAsk {
  ports: PortSpec[];
  durationMs: number;
  /** Normalised source, or undefined when the requester gave none. */
  source?: string;
}

export interface CheckedAccess {
  rules: PortRule[];
  /** The source to use; undefined means it must be learnt from the requester ("my IP"). */
  source?: string;
}

/**
 * Checks ports, duration and source against the effective policy. Throws a JitError that says
 * what was wrong, what is allowed and what to type instead.
 */
export function checkAccess(policy: EffectivePolicy, ask: AccessAsk, minDurationMs: number): CheckedAccess {
  const name = policy.target.name;
  const allowedList = policy.ports.map(portLabel).join(', ') || 'none';
  const rules: PortRule[] = [];
  for (const want of ask.ports) {
    const rule = ruleFor(policy, want);
    if (!rule) {
      const first = policy.ports[0];
      throw new JitError(
        'port_not_allowed',
        `${name} does not allow ${portLabel(want)}; allowed: ${allowedList}`,
        first ? `${exampleVerb([first])} ${name} ${formatDuration(Math.min(3600_000, first.maxDurationMs))}` : undefined,
      );
    }
    rules.push(rule);
  }
  const maxMs = Math.min(...rules.map((r) => r.maxDurationMs));
  const verb = exampleVerb(ask.ports);
  const fromPart = ask.source ? ` from ${ask.source === ANY ? '*' : ask.source}` : '';
  if (ask.durationMs > maxMs) {
    throw new JitError(
      'duration_too_long',
      `${name} allows at most ${formatDuration(maxMs)} on ${ask.ports.map((p) => p.port).join(',')}`,
      `${verb} ${name} ${formatDuration(maxMs)}${fromPart}`,
    );
  }
  if (ask.durationMs < minDurationMs) {
    throw new JitError(
      'duration_too_short',
      `the shortest grant is ${formatDuration(minDurationMs)}`,
      `${verb} ${name} ${formatDuration(Math.min(maxMs, Math.max(minDurationMs, 30 * 60_000)))}${fromPart}`,
    );
  }
  if (ask.source !== undefined) {
    for (const rule of rules) {
      const allowed = rule.exactSources
        ? rule.allowedSourcePrefixes.some((p) => p === ANY || p === ask.source)
        : sourceAllowed(ask.source, rule.allowedSourcePrefixes);
      if (!allowed) {
        const sample = rule.allowedSourcePrefixes.find((p) => p !== ANY);
        throw new JitError(
          'source_not_allowed',
          `${ask.source === ANY ? 'Any source (*)' : ask.source} is not allowed on ${name} ${portLabel(rule)}; allowed sources: ${describePrefixes(rule.allowedSourcePrefixes)}${
            rule.exactSources ? ' (exactly one of these, as written: a range inside one is refused)' : ''
          }`,
          sample ? `${verb} ${name} ${formatDuration(ask.durationMs)} from ${sample}` : undefined,
        );
      }
    }
    return { rules, source: ask.source };
  }
  return { rules, source: fixedSource(rules) };
}

/** When every port allows exactly one fixed range (not Any), that range is the source. */
export function fixedSource(rules: PortRule[]): string | undefined {
  const sets = rules.map((r) => r.allowedSourcePrefixes.map((p) => safeParse(p)));
  const first = sets[0];
  if (!first || first.length !== 1 || first[0] === undefined || first[0] === ANY) return undefined;
  const only = first[0];
  return sets.every((s) => s.length === 1 && s[0] === only) ? only : undefined;
}

function safeParse(p: string): string | undefined {
  try {
    return parseSource(p);
  } catch {
    return undefined;
  }
}
