// Defender for Cloud's JIT wire format (jitNetworkAccessPolicies, api-version 2020-01-01) and the
// pure helpers of the Defender gate (defender.ts): the bot's tag in a request's justification, a
// policy's ports as the bot's port rules, the ports a request holds open, Defender's own NSG rule.
import { parseDuration } from '../../core/duration.js';
import type { NetworkPolicies } from '../../core/policy.js';
import { ANY, parseSource } from '../../core/source.js';
import type { PortRule, Protocol } from '../../core/types.js';
import type { WireRule } from './nsg-rules.js';

export interface JitPortRuleWire {
  number: number;
  protocol: string;
  allowedSourceAddressPrefix?: string;
  allowedSourceAddressPrefixes?: string[];
  maxRequestAccessDuration: string;
}
export interface JitPolicyVmWire {
  id: string;
  ports: JitPortRuleWire[];
  publicIpAddress?: string;
}
export interface JitRequestPortWire {
  number: number;
  allowedSourceAddressPrefix?: string;
  allowedSourceAddressPrefixes?: string[];
  endTimeUtc: string;
  status?: string;
  statusReason?: string;
  mappedPort?: number;
}
export interface JitRequestWire {
  virtualMachines: Array<{ id: string; ports: JitRequestPortWire[] }>;
  startTimeUtc: string;
  requestor?: string;
  justification?: string;
}
export interface JitPolicyWire {
  id: string;
  name: string;
  location?: string;
  kind?: string;
  properties: { virtualMachines: JitPolicyVmWire[]; requests?: JitRequestWire[]; provisioningState?: string };
}
/** The initiate call's body (JitNetworkAccessPolicyInitiateRequest). */
export interface InitiateWire {
  virtualMachines: Array<{ id: string; ports: Array<{ number: number; allowedSourceAddressPrefix?: string; endTimeUtc: string }> }>;
  justification?: string;
}

// ------------------------------------------------------------------ pure helpers

export const TAG = /^jit-bot request=([A-Za-z0-9_-]+)/;
/** Defender's limit on a justification is not documented; the bot keeps its own short. */
export const JUSTIFICATION_MAX = 200;

/** The justification every initiate of the bot carries: its tag first, then who and why. */
export function justificationOf(requestId: string, requester?: string, text?: string, note?: string): string {
  const base = `jit-bot request=${requestId}${requester ? ` for ${requester}` : ''}${note ? ` (${note})` : ''}${text ? `: ${text}` : ''}`;
  return base.length <= JUSTIFICATION_MAX ? base : `${base.slice(0, JUSTIFICATION_MAX - 1)}…`;
}

/** A request the bot made to end a grant early: Defender's to close at its (near) end, not to be ended again. */
export const endsEarly = (r: { justification?: string }): boolean => /^jit-bot request=\S+ \(ended early/.test(r.justification ?? '');

/** The bot's request id in a Defender request's justification, if it is one of the bot's. */
export function tagOf(r: { justification?: string }): string | undefined {
  return TAG.exec(r.justification ?? '')?.[1];
}

export const sameId = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

export function protocolOf(p: string | undefined): Protocol {
  const v = (p ?? '*').toLowerCase();
  return v === 'tcp' ? 'tcp' : v === 'udp' ? 'udp' : '*';
}

/** A port rule's allowed sources as Defender wrote them (`*` when none is given). */
export function rawSources(r: { allowedSourceAddressPrefix?: string; allowedSourceAddressPrefixes?: string[] }): string[] {
  if (r.allowedSourceAddressPrefixes && r.allowedSourceAddressPrefixes.length > 0) return r.allowedSourceAddressPrefixes;
  return [r.allowedSourceAddressPrefix ?? '*'];
}

export const normalized = (raw: string): string | undefined => {
  try {
    return parseSource(raw);
  } catch {
    return undefined;
  }
};

/** One of Defender's port rules as the bot's port rule; a string says why it cannot be used. */
export function portRuleOf(r: JitPortRuleWire): PortRule | string {
  let maxDurationMs: number;
  try {
    maxDurationMs = parseDuration(r.maxRequestAccessDuration);
  } catch {
    return `port ${r.number}: maxRequestAccessDuration "${String(r.maxRequestAccessDuration)}" is not an ISO-8601 duration`;
  }
  const prefixes: string[] = [];
  for (const raw of rawSources(r)) {
    const n = normalized(raw);
    if (n === undefined) return `port ${r.number}: allowed source "${raw}" is not an address or CIDR`;
    prefixes.push(n);
  }
  return { port: r.number, protocol: protocolOf(r.protocol), allowedSourcePrefixes: prefixes, maxDurationMs, exactSources: true };
}

/** Defender's policies as the bot's targets and port rules. */
export function importPolicies(docs: JitPolicyWire[]): { policies: NetworkPolicies; problems: string[] } {
  const problems: string[] = [];
  const targets: NetworkPolicies['targets'] = [];
  const seen = new Set<string>();
  for (const doc of docs) {
    const rg = /\/resourceGroups\/([^/]+)\//i.exec(doc.id)?.[1] ?? '?';
    for (const vm of doc.properties?.virtualMachines ?? []) {
      if (typeof vm.id !== 'string') continue;
      if (seen.has(vm.id.toLowerCase())) {
        problems.push(`${vm.id} is in more than one JIT policy; the first one (of ${listOrder(docs, vm.id)}) is used`);
        continue;
      }
      seen.add(vm.id.toLowerCase());
      const ports: PortRule[] = [];
      for (const p of vm.ports ?? []) {
        const rule = portRuleOf(p);
        if (typeof rule === 'string') problems.push(`${vm.id}: ${rule}; that port is left out`);
        else ports.push(rule);
      }
      const name = vm.id.split('/').pop()!;
      targets.push({ target: { name, id: vm.id, os: ports.some((p) => p.port === 3389) ? 'windows' : 'linux' }, ports, policy: `${rg}/${doc.name}` });
    }
  }
  return { policies: { source: 'defender', targets }, problems };
}

export const listOrder = (docs: JitPolicyWire[], vmId: string) =>
  docs.filter((d) => (d.properties?.virtualMachines ?? []).some((v) => sameId(v.id, vmId))).map((d) => d.id.split('/providers/')[0]!.split('/').pop() + '/' + d.name).join(', ');

/** A request's port with the request it belongs to. */
export interface CurrentPort {
  request: JitRequestWire;
  port: JitRequestPortWire;
}

/**
 * What Defender holds now for each port of a VM: the port of the latest request (by start time,
 * then by place in the list) that names it.
 */
export function currentPorts(doc: JitPolicyWire, vmId: string): Map<number, CurrentPort> {
  const requests = (doc.properties?.requests ?? []).map((r, i) => ({ r, i, at: Date.parse(r.startTimeUtc) || 0 }));
  requests.sort((a, b) => a.at - b.at || a.i - b.i);
  const out = new Map<number, CurrentPort>();
  for (const { r } of requests) {
    for (const vm of r.virtualMachines ?? []) {
      if (!sameId(vm.id, vmId)) continue;
      for (const p of vm.ports ?? []) out.set(p.number, { request: r, port: p });
    }
  }
  return out;
}

/** Every VM a policy's requests name. */
export const requestedVms = (doc: JitPolicyWire): string[] => {
  const ids = new Map<string, string>();
  for (const r of doc.properties?.requests ?? []) for (const vm of r.virtualMachines ?? []) ids.set(vm.id.toLowerCase(), vm.id);
  return [...ids.values()];
};

/** Defender treats a port whose end time is this close as ending by itself (clock skew, its own lag). */
export const END_SLACK_MS = 2000;

export const isLive = (p: JitRequestPortWire): boolean => /^(initiated|initiating)$/i.test(p.status ?? 'Initiated');
export const isOpenAt = (p: JitRequestPortWire, now: number): boolean => isLive(p) && Date.parse(p.endTimeUtc) > now + END_SLACK_MS;

/** `203.0.113.7/32` → `203.0.113.7` (as Defender's own examples write a host), other prefixes as they are. */
export const hostForm = (source: string) => source.replace(/\/(32|128)$/, '');

export const iso = (ms: number) => new Date(ms).toISOString();
export const hhmm = (ms: number) => `${iso(ms).slice(11, 16)} UTC`;


/**
 * Defender's own Allow rule for this VM and these ports (the NSG fallback): named
 * `SecurityCenter-JITRule-…` (its Deny rules are `SecurityCenter-JITRule_-…`), inbound, to the
 * VM's address or naming the VM, for the request's source.
 */
export function isDefenderAllow(r: WireRule, vmName: string, privateIps: string[], ports: Array<{ number: number; source: string }>): boolean {
  const p = r.properties;
  if (!r.name.startsWith('SecurityCenter-JITRule-') || (p.direction ?? 'Inbound') !== 'Inbound') return false;
  const dests = [p.destinationAddressPrefix, ...(p.destinationAddressPrefixes ?? [])].filter((x): x is string => Boolean(x));
  const forVm = dests.some((d) => privateIps.includes(d.replace(/\/(32|128)$/, ''))) || (p.description ?? '').includes(`VM '${vmName}'`);
  if (!forVm) return false;
  const sources = [p.sourceAddressPrefix, ...(p.sourceAddressPrefixes ?? [])].filter((x): x is string => Boolean(x)).map((s) => normalized(s) ?? s);
  return ports.some((want) => String(want.number) === p.destinationPortRange && sources.includes(normalized(want.source) ?? want.source));
}
