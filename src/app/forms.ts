// Chat-native forms, platform-neutral: what the "request access" form may offer one person (their
// targets, the access, durations and sources each target's policy allows, the justification rule),
// and its submission, which runs the very use case the typed command runs (requestAccess: every
// rule is checked again there) and answers either its reply or errors keyed by field. A platform
// renders this model (a Slack modal, a Teams card, the console); nothing here knows one.
import type { AccessCommand } from '../core/command.js';
import { formatDuration, parseDuration } from '../core/duration.js';
import { JitError, isJitError, type JitErrorCode } from '../core/errors.js';
import { portLabel } from '../core/format.js';
import { VERB_PORTS } from '../core/parse.js';
import { effectivePolicy, findTarget, fixedSource, type EffectivePolicy } from '../core/policy.js';
import { can, hasAnyRole, unresolvedGroupsBehind, unresolvedNote } from '../core/rbac.js';
import type { Reply } from '../core/reply.js';
import { describePrefixes, parseSource } from '../core/source.js';
import { MAX_TEXT_LENGTH } from '../core/validate.js';
import type { Os, PortRule, PortSpec, PrincipalId, Protocol, RequestOrigin, Target } from '../core/types.js';
import type { JitService } from './service.js';
import { parseTargetName } from '../core/ids.js';

/** What the forms read from the use cases (public methods of JitService only). */
export type FormsService = Pick<JitService, 'policyBook' | 'settings' | 'requestAccess'>;

/** Past this many targets a platform should offer a search (typeahead) rather than one long list. */
export const TYPEAHEAD_AFTER = 100;
/** The longest a start may lie ahead (the same as `at …` in a typed command). */
export const MAX_START_AHEAD_MS = 7 * 86_400_000;
/** The durations a form offers, where the policy allows them (its maximum is always offered too). */
export const DURATION_STEPS_MS = [5, 15, 30, 60, 120, 180, 240, 480, 720, 1440].map((m) => m * 60_000);

export interface TargetChoice {
  name: string;
  os: Os;
}

/** One access choice: RDP, SSH, WinRM, or a port the policy names (`port:8443/tcp`). */
export interface AccessChoice {
  /** Stable value to send back: `rdp`, `ssh`, `winrm`, `port:<port>/<tcp|udp|any>`. */
  id: string;
  /** `RDP (3389/tcp)`. */
  label: string;
  ports: PortSpec[];
  /** The longest grant the policy allows for these ports. */
  maxDurationMs: number;
}

export interface DurationChoice {
  ms: number;
  /** `1h`, as the typed command reads it. */
  label: string;
}

/** Where the connection will come from. */
export type SourceOption =
  /** The policy's one fixed range: nothing to type. */
  | { kind: 'fixed'; value: string; label: string }
  /** A one-time "my IP" link (PUBLIC_URL is set): open it from the computer you connect from. */
  | { kind: 'myip'; label: string }
  /** An address or range typed in; `allowed` says which ranges the policy accepts. */
  | { kind: 'typed'; label: string; allowed: string };

export interface SelectedTargetForm {
  target: TargetChoice;
  access: AccessChoice[];
  /** The access chosen (the one asked for if offered, else the first). */
  selectedAccess: string;
  /** Durations for the selected access, within its maximum; `defaultMs` among them. */
  durations: DurationChoice[];
  defaultDurationMs: number;
  /** In order of preference: the first is the default. */
  sources: SourceOption[];
  justification: { required: boolean; hint?: string; pattern?: string; maxLength: number };
  /** A later start (`at …`): allowed up to 7 days ahead, in the requester's time zone (else the policy's). */
  start: { allowed: boolean; maxAheadMs: number; timeZone: string };
  /** Approvers decide (false: the policy opens it at once). */
  approvalRequired: boolean;
}

export type RequestFormModel =
  | { ok: false; reason: string }
  | {
      ok: true;
      /** Every target the person may request (RBAC), sorted by name. */
      targets: TargetChoice[];
      count: number;
      /** True past TYPEAHEAD_AFTER targets: offer a search instead of a list. */
      typeahead: boolean;
      /** Present once a target is selected (or when there is only one). */
      selected?: SelectedTargetForm;
    };

export interface FormSelection {
  target?: string;
  access?: string;
  /** The requester's IANA time zone, from their platform profile. */
  timeZone?: string;
}

/** What a submitted form holds; every value as the platform read it (strings), all optional. */
export interface FormValues {
  target?: string;
  /** An AccessChoice id. */
  access?: string;
  /** Milliseconds as digits (a choice), or a typed duration (`90m`). */
  duration?: string;
  /** `fixed` or `myip` (or empty: the default option), else an address or range typed in. */
  source?: string;
  justification?: string;
  /** An instant: epoch milliseconds as digits, or `HH:MM` / ISO date-time as `at …` reads them. */
  start?: string;
}

export type FormField = 'target' | 'access' | 'duration' | 'source' | 'justification' | 'start';
/** Errors by field; `form` for one that belongs to no field (a rate or in-flight limit). */
export type FormErrors = Partial<Record<FormField | 'form', string>>;

export type SubmitResult = { ok: true; reply: Reply } | { ok: false; errors: FormErrors };

/** Which field a refusal of the use case is about. */
const FIELD_OF: Partial<Record<JitErrorCode, FormField>> = {
  unknown_target: 'target',
  forbidden: 'target',
  port_not_allowed: 'access',
  bad_port: 'access',
  bad_duration: 'duration',
  duration_too_long: 'duration',
  duration_too_short: 'duration',
  bad_source: 'source',
  source_not_allowed: 'source',
  source_required: 'source',
  justification_required: 'justification',
  bad_justification: 'justification',
  bad_start: 'start',
};

const NAMED: Array<{ id: 'rdp' | 'ssh' | 'winrm'; name: string }> = [
  { id: 'rdp', name: 'RDP' },
  { id: 'ssh', name: 'SSH' },
  { id: 'winrm', name: 'WinRM' },
];

const ruleFor = (rules: PortRule[], want: PortSpec): PortRule | undefined => rules.find((r) => r.port === want.port && (r.protocol === want.protocol || r.protocol === '*'));

/** The access choices a policy offers: RDP, SSH, WinRM where all their ports are allowed, then every other port. */
export function accessChoices(policy: EffectivePolicy): AccessChoice[] {
  const out: AccessChoice[] = [];
  const used = new Set<PortRule>();
  for (const { id, name } of NAMED) {
    const rules = VERB_PORTS[id].map((p) => ruleFor(policy.ports, p));
    if (rules.some((r) => !r)) continue;
    for (const r of rules) used.add(r!);
    out.push({ id, label: `${name} (${VERB_PORTS[id].map(portLabel).join(', ')})`, ports: VERB_PORTS[id], maxDurationMs: Math.min(...rules.map((r) => r!.maxDurationMs)) });
  }
  for (const r of policy.ports) {
    if (used.has(r)) continue;
    const spec: PortSpec = { port: r.port, protocol: r.protocol };
    out.push({ id: `port:${portLabel(spec)}`, label: `Port ${portLabel(spec)}`, ports: [spec], maxDurationMs: r.maxDurationMs });
  }
  return out;
}

/** The ports an access choice id stands for (`rdp`, `port:8443/tcp`); undefined if it is not one. */
export function portsOfChoice(id: string): PortSpec[] | undefined {
  if (id === 'rdp' || id === 'ssh' || id === 'winrm') return VERB_PORTS[id];
  const m = /^port:(\d{1,5})\/(tcp|udp|any)$/.exec(id);
  if (!m) return undefined;
  const port = Number(m[1]);
  if (port < 1 || port > 65535) return undefined;
  return [{ port, protocol: (m[2] === 'any' ? '*' : m[2]) as Protocol }];
}

/** Durations from `minMs` to `maxMs` (both offered where they fit), in the steps above. */
export function durationChoices(minMs: number, maxMs: number): DurationChoice[] {
  if (maxMs < minMs) return [];
  const set = new Set(DURATION_STEPS_MS.filter((ms) => ms >= minMs && ms <= maxMs));
  set.add(maxMs);
  if (set.size === 1 || minMs > DURATION_STEPS_MS[0]!) set.add(minMs);
  return [...set].sort((a, b) => a - b).map((ms) => ({ ms, label: formatDuration(ms) }));
}

export class RequestForms {
  constructor(private readonly service: FormsService) {}

  /** The targets `principal` may request, sorted by name. */
  requestableTargets(principal: PrincipalId): Target[] {
    const book = this.service.policyBook();
    return Object.values(book.targets)
      .filter((t) => can(book, principal, 'request', t.id))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Why `principal` may request nothing (undefined when they may request something). */
  noRequestReason(principal: PrincipalId, targets = this.requestableTargets(principal)): string | undefined {
    if (targets.length > 0) return undefined;
    const book = this.service.policyBook();
    const unresolved = Object.keys(book.unresolvedGroups ?? {}).filter((g) => book.roles.some((r) => r.principal === `group:${g}`)).sort();
    const note = unresolvedNote(book, unresolved);
    if (!hasAnyRole(book, principal)) return `you (${principal}) have no JIT role yet, so there is no VM you can request; ask a JIT Admin for the JIT Requester role on the VMs you need${note}`;
    return `you (${principal}) may not request access to any VM (your roles let you read or approve, not request); ask a JIT Admin for the JIT Requester role on the VMs you need${note}`;
  }

  /** Targets whose name contains `query` (case-insensitive), the ones starting with it first: a typeahead's options. */
  searchTargets(principal: PrincipalId, query: string, limit = TYPEAHEAD_AFTER): TargetChoice[] {
    const q = query.trim().toLowerCase();
    const hits = this.requestableTargets(principal).filter((t) => t.name.includes(q));
    const starts = hits.filter((t) => t.name.startsWith(q));
    const rest = hits.filter((t) => !t.name.startsWith(q));
    return [...starts, ...rest].slice(0, limit).map(choice);
  }

  /** What the form may offer `principal` now, for the target (and access) selected so far. */
  requestForm(principal: PrincipalId, platform: string, selected: FormSelection = {}): RequestFormModel {
    void platform;
    const targets = this.requestableTargets(principal);
    const reason = this.noRequestReason(principal, targets);
    if (reason) return { ok: false, reason };
    const want = selected.target === undefined ? undefined : parseTargetName(selected.target);
    const pick = selected.target !== undefined ? targets.find((t) => t.name === want) : targets.length === 1 ? targets[0] : undefined;
    return {
      ok: true,
      targets: targets.map(choice),
      count: targets.length,
      typeahead: targets.length > TYPEAHEAD_AFTER,
      ...(pick ? { selected: this.targetForm(pick, selected) } : {}),
    };
  }

  private targetForm(target: Target, selected: FormSelection): SelectedTargetForm {
    const book = this.service.policyBook();
    const { minDurationMs, publicUrl } = this.service.settings;
    const policy = effectivePolicy(book, target);
    const access = accessChoices(policy);
    const chosen = access.find((a) => a.id === selected.access) ?? access[0];
    const durations = chosen ? durationChoices(minDurationMs, chosen.maxDurationMs) : [];
    const hour = durations.filter((d) => d.ms <= 3600_000).pop() ?? durations[0];
    const rules = chosen ? chosen.ports.map((p) => ruleFor(policy.ports, p)!) : [];
    const sources: SourceOption[] = [];
    const fixed = rules.length ? fixedSource(rules) : undefined;
    if (fixed) sources.push({ kind: 'fixed', value: fixed, label: `${fixed} (the range this VM allows)` });
    else if (publicUrl) sources.push({ kind: 'myip', label: 'My IP address (a one-time link to open from the computer you connect from)' });
    const allowed = [...new Set(rules.flatMap((r) => r.allowedSourcePrefixes))];
    sources.push({ kind: 'typed', label: 'An address or range I type', allowed: describePrefixes(allowed) });
    const j = policy.justification;
    return {
      target: choice(target),
      access,
      selectedAccess: chosen?.id ?? '',
      durations,
      defaultDurationMs: hour?.ms ?? 0,
      sources,
      justification: { required: j.required, ...(j.hint ? { hint: j.hint } : {}), ...(j.pattern ? { pattern: j.pattern } : {}), maxLength: MAX_TEXT_LENGTH },
      start: { allowed: true, maxAheadMs: MAX_START_AHEAD_MS, timeZone: selected.timeZone ?? policy.timeZone },
      approvalRequired: policy.approval.required,
    };
  }

  /**
   * Checks every field (so a person sees all that is wrong at once), then runs the typed command's
   * use case, which checks everything again; nothing is created until all is valid.
   */
  async submitForm(principal: PrincipalId, platform: string, values: FormValues, origin: Omit<RequestOrigin, 'via'> = {}): Promise<SubmitResult> {
    const errors: FormErrors = {};
    const book = this.service.policyBook();
    const name = values.target?.trim() ?? '';
    const target = name ? findTarget(book, name) : undefined;
    if (!name) errors.target = 'choose a VM';
    else if (!target || !can(book, principal, 'request', target.id)) {
      const suspended = target ? unresolvedNote(book, unresolvedGroupsBehind(book, 'request', target.id)) : '';
      errors.target = target ? `you have no JIT Requester role covering ${target.name}${suspended}` : `there is no VM "${clip(name, 80)}" you can request`;
    }
    const policy = target && !errors.target ? effectivePolicy(book, target) : undefined;
    const ports = values.access ? portsOfChoice(values.access) : undefined;
    const offered = policy ? accessChoices(policy) : [];
    const access = ports && policy ? offered.find((a) => a.id === values.access) : undefined;
    if (!values.access) errors.access = 'choose the access you need';
    else if (!ports) errors.access = 'this is not an access choice';
    else if (policy && !access) errors.access = `${target!.name} does not allow ${ports.map(portLabel).join(', ')}; allowed: ${offered.map((a) => a.label).join(', ') || 'none'}`;

    let durationMs: number | undefined;
    const d = values.duration?.trim() ?? '';
    if (!d) errors.duration = 'choose how long';
    else {
      try {
        durationMs = /^\d{1,12}$/.test(d) ? Number(d) : parseDuration(d);
      } catch (e) {
        if (!isJitError(e)) throw e;
        errors.duration = e.message;
      }
      if (durationMs !== undefined && access) {
        const min = this.service.settings.minDurationMs;
        if (durationMs > access.maxDurationMs) errors.duration = `${target!.name} allows at most ${formatDuration(access.maxDurationMs)} for ${access.label}`;
        else if (durationMs < min) errors.duration = `the shortest grant is ${formatDuration(min)}`;
      }
    }

    const s = values.source?.trim() ?? '';
    const source = s === '' || s === 'fixed' || s === 'myip' ? undefined : s;
    if (s === 'myip' && !this.service.settings.publicUrl) errors.source = 'the "my IP" link is not available here (no PUBLIC_URL is configured); type your address';
    if (source !== undefined) {
      try {
        parseSource(source);
      } catch (e) {
        if (!isJitError(e)) throw e;
        errors.source = e.message;
      }
    }

    const justification = values.justification?.trim() || undefined;
    if (justification !== undefined && justification.length > MAX_TEXT_LENGTH) errors.justification = `at most ${MAX_TEXT_LENGTH} characters`;

    const start = startText(values.start);
    if (start === null) errors.start = 'this is not a start time';

    if (Object.keys(errors).length > 0 || !target || !access || durationMs === undefined) return { ok: false, errors };
    const cmd: AccessCommand = {
      kind: 'access',
      verb: access.id === 'rdp' || access.id === 'ssh' || access.id === 'winrm' ? access.id : 'port',
      ports: access.ports,
      target: target.name,
      durationMs,
      ...(source !== undefined ? { source } : {}),
      ...(justification !== undefined ? { justification } : {}),
      ...(start ? { startAt: start } : {}),
    };
    try {
      return { ok: true, reply: await this.service.requestAccess(principal, cmd, { ...origin, via: platform }) };
    } catch (e) {
      if (!isJitError(e)) throw e;
      return { ok: false, errors: fieldErrors(e, justification !== undefined) };
    }
  }
}

/** A refusal of the use case as the field it concerns (a `parse` refusal with a reason given is the reason's). */
export function fieldErrors(e: JitError, hadJustification: boolean): FormErrors {
  const field = FIELD_OF[e.code] ?? (e.code === 'parse' && hadJustification && /reason|justification/i.test(e.message) ? 'justification' : undefined);
  return { [field ?? 'form']: e.message };
}

/** A start value as `resolveStart` reads it; undefined for none, null for one that is not a time. */
function startText(v: string | undefined): string | undefined | null {
  const t = v?.trim() ?? '';
  if (!t) return undefined;
  if (/^\d{12,14}$/.test(t)) {
    const ms = Number(t);
    return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
  }
  return t.length <= 40 ? t : null;
}

const choice = (t: Target): TargetChoice => ({ name: t.name, os: t.os });
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
