// The policy model: targets, scoped policies that inherit downwards, and the check of a
// request against the effective policy. Pure.
import { JitError } from './errors.js';
import { portLabel } from './format.js';
import { formatDuration } from './duration.js';
import { ANY, describePrefixes, parseSource, sourceAllowed } from './source.js';
import { TARGET_NAME_RE } from './validate.js';
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

/** The target named `name` (case-insensitive), own entries only. */
export function findTarget(book: PolicyBook, name: string): Target | undefined {
  return own(book.targets, name.toLowerCase());
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

/** One line of `policy <vm>`: a setting, its effective value, and where it was set. */
export interface PolicyLine {
  key: string;
  value: string;
  from: string;
}

const dur = (ms: number): string => {
  const h = Math.floor(ms / 3600_000);
  const m = Math.round((ms % 3600_000) / 60_000);
  return h && m ? `${h}h${m}m` : h ? `${h}h` : `${m}m`;
};

/** The effective policy of a target as lines, each with the policy (or default) it comes from. */
export function describePolicy(policy: EffectivePolicy): PolicyLine[] {
  const o = policy.origin;
  const lines: PolicyLine[] = [];
  for (const r of policy.ports) {
    const exactly = r.exactSources && !r.allowedSourcePrefixes.includes(ANY) ? 'exactly ' : '';
    lines.push({ key: `port ${portLabel(r)}`, value: `max ${dur(r.maxDurationMs)}, from ${exactly}${r.allowedSourcePrefixes.map((s) => (s === ANY ? 'any' : s)).join(', ')}`, from: o.ports ?? 'default' });
  }
  const a = policy.approval;
  const approvalValues: Record<string, string> = {
    required: a.required ? 'yes' : 'no (opens at once)',
    approvers: a.approvers.length ? a.approvers.join(', ') : 'anyone with JIT Approver or JIT Admin covering the VM',
    quorum: String(a.quorum),
    denyQuorum: String(a.denyQuorum),
    timeoutMs: dur(a.timeoutMs),
    selfApproval: a.selfApproval ? 'allowed' : 'not allowed',
  };
  for (const [k, v] of Object.entries(approvalValues)) lines.push({ key: `approval.${k === 'timeoutMs' ? 'timeout' : k}`, value: v, from: o[`approval.${k}`] ?? 'default' });
  for (const [k, v] of Object.entries(a)) {
    if (Object.hasOwn(approvalValues, k) || v === undefined) continue;
    lines.push({ key: `approval.${k}`, value: typeof v === 'object' ? JSON.stringify(v) : String(v), from: o[`approval.${k}`] ?? 'default' });
  }
  const j = policy.justification;
  lines.push({ key: 'justification', value: j.required ? `required${j.pattern ? ` matching ${j.pattern}` : ''}` : 'optional', from: o['justification.required'] ?? o['justification.pattern'] ?? 'default' });
  lines.push({ key: 'reminder', value: policy.reminder.beforeMs > 0 ? `${dur(policy.reminder.beforeMs)} before expiry, extend by ${policy.reminder.extendOptionsMs.map(dur).join(' / ') || '—'}` : 'none', from: o['reminder.beforeMs'] ?? 'default' });
  lines.push({ key: 'autoApprove', value: policy.autoApprove.length ? policy.autoApprove.map((r) => r.name).join(', ') : 'none', from: o.autoApprove ?? 'default' });
  if (policy.routing.length) lines.push({ key: 'routing', value: policy.routing.map((r) => r.name).join(', '), from: o.routing ?? 'default' });
  for (const [platform, c] of Object.entries(policy.channels).sort(([a], [b]) => a.localeCompare(b))) {
    for (const [kind, where] of Object.entries(c)) lines.push({ key: `channels.${platform}.${kind}`, value: String(where), from: o[`channels.${platform}.${kind}`] ?? 'default' });
  }
  lines.push({ key: 'timeZone', value: policy.timeZone, from: o.timeZone ?? 'default' });
  if (policy.target.enforce) lines.push({ key: 'enforce', value: 'yes (deny rules written at start)', from: 'target' });
  return lines;
}

/**
 * Targets and port rules that a network provider defines itself (Defender for Cloud's JIT
 * policies): the provider's ports, maximum durations and sources are the truth for these VMs; the
 * policy file adds who may request and who approves.
 */
export interface NetworkPolicies {
  /** Who defines them, for origins and messages (`defender`). */
  source: string;
  targets: Array<{
    target: Target;
    ports: PortRule[];
    /** The provider's policy, e.g. `prod/default` (shown as the origin of the ports). */
    policy: string;
  }>;
}

/**
 * The policy file's book with a network provider's targets and ports merged in. Each imported VM
 * becomes a target (unless the file names it already: the file's target keeps its name, address and
 * user) and gets a policy at the VM's own scope that sets only its ports, so it overrides any
 * ports the file sets above it while approvals, channels and the rest still come from the file.
 * Returns notes on what could not be merged.
 */
export function withNetworkPolicies(file: PolicyBook, net: NetworkPolicies | undefined): { book: PolicyBook; notes: string[] } {
  if (!net) return { book: file, notes: [] };
  const notes: string[] = [];
  const targets: Record<string, Target> = { ...file.targets };
  const byId = new Map(Object.values(file.targets).map((t) => [normalizeScope(t.id), t]));
  const policies: PolicyDef[] = [...file.policies];
  for (const { target, ports, policy } of net.targets) {
    const known = byId.get(normalizeScope(target.id));
    let merged: Target;
    if (known) merged = known;
    else {
      const name = target.name.toLowerCase();
      if (!TARGET_NAME_RE.test(name)) {
        notes.push(`${target.id}: the VM name "${target.name}" cannot be typed in chat; name it under targets in the policy file`);
        continue;
      }
      const clash = own(targets, name);
      if (clash) {
        notes.push(`${target.id}: the policy file's target "${name}" is another VM (${clash.id}); name this one under targets in the policy file`);
        continue;
      }
      merged = { ...target, name };
      targets[name] = merged;
      byId.set(normalizeScope(target.id), merged);
    }
    if (ports.length === 0) {
      notes.push(`${merged.name}: ${net.source} policy ${policy} opens no port of it`);
      continue;
    }
    policies.push({ name: `${net.source}:${policy}`, scope: normalizeScope(merged.id), ports });
  }
  return { book: { ...file, targets, policies }, notes };
}
