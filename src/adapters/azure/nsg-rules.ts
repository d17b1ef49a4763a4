// The NSG rules the bot plans: its grant Allow rules (one per port and address family) and "enable
// JIT" Deny rules, ARM's per-NSG limits, what a rule PUT carries, and reading rules back as
// AppliedRules. Pure: the gate's writers send them.
import ipaddr from 'ipaddr.js';
import { parseRuleDescription, ruleName } from '../../core/rule-tags.js';
import type { AppliedRule, PortSpec, Protocol } from '../../core/types.js';
import type { ArmDoc } from './arm.js';
import { UnsupportedTargetError } from './discovery.js';

/** ARM's limits per NSG. */
export const NSG_MAX_RULES = 1000;

export const NSG_MAX_PREFIXES = 4000;

export const RULE_NAME_MAX = 80;

export const armProtocol = (p: Protocol): string => (p === 'tcp' ? 'Tcp' : p === 'udp' ? 'Udp' : '*');

export const jitProtocol = (p: string | undefined): Protocol => (p?.toLowerCase() === 'tcp' ? 'tcp' : p?.toLowerCase() === 'udp' ? 'udp' : '*');

export interface RuleProps {
  priority: number;
  direction: string;
  access: string;
  protocol: string;
  sourceAddressPrefix?: string;
  sourceAddressPrefixes?: string[];
  sourcePortRange?: string;
  destinationAddressPrefix?: string;
  destinationAddressPrefixes?: string[];
  destinationPortRange?: string;
  destinationPortRanges?: string[];
  sourceApplicationSecurityGroups?: Array<{ id: string }>;
  destinationApplicationSecurityGroups?: Array<{ id: string }>;
  description?: string;
  provisioningState?: string;
}

export interface WireRule {
  name: string;
  id?: string;
  etag?: string;
  properties: RuleProps;
}

/** The NSG document's rule list (attached: edits show in later plans of the same batch). */
export const nsgRulesOf = (doc: ArmDoc): WireRule[] => {
  const props = (doc.properties ??= {});
  return ((props.securityRules as WireRule[] | undefined) ??= []);
};

export const isV6 = (prefix: string) => prefix.includes(':');

/**
 * The Allow rules of a grant: one per port and address family (a rule cannot mix IPv4 and IPv6
 * prefixes). An IPv4 source reaches the VM's IPv4 addresses, an IPv6 source its IPv6 ones, Any
 * both; a source of a family the VM has no address of is refused.
 */
export function planAllowRules(target: string, requestId: string, ports: PortSpec[], source: string, ips: string[], description: string): WireRule[] {
  const families: Array<{ v6: boolean; dests: string[]; source: string }> = [];
  const v4 = ips.filter((ip) => !isV6(ip));
  const v6 = ips.filter(isV6);
  if (source === '*' || source === 'Internet') {
    if (v4.length) families.push({ v6: false, dests: v4, source });
    if (v6.length) families.push({ v6: true, dests: v6, source });
  } else if (isV6(source)) {
    if (!v6.length) throw new UnsupportedTargetError(target, `the source ${source} is IPv6 but the VM has no IPv6 address; request from an IPv4 address`);
    families.push({ v6: true, dests: v6, source });
  } else {
    if (!v4.length) throw new UnsupportedTargetError(target, `the source ${source} is IPv4 but the VM has only IPv6 addresses; request from an IPv6 address`);
    families.push({ v6: false, dests: v4, source });
  }
  return ports.flatMap((p) =>
    families.map((f) => ({
      name: `${ruleName(requestId, p.port, p.protocol)}${f.v6 ? '-v6' : ''}`,
      properties: {
        priority: 0,
        direction: 'Inbound',
        access: 'Allow',
        protocol: armProtocol(p.protocol),
        sourceAddressPrefix: f.source,
        sourcePortRange: '*',
        ...(f.dests.length === 1 ? { destinationAddressPrefix: f.dests[0]! } : { destinationAddressPrefixes: f.dests }),
        destinationPortRange: String(p.port),
        description,
      },
    })),
  );
}

/** ARM's per-NSG limits, checked before writing so the refusal says what to do. */
export function checkNsgLimits(nsgId: string, rules: WireRule[]): void {
  const name = nsgId.split('/').pop();
  if (rules.length > NSG_MAX_RULES) throw new Error(`${name} would hold ${rules.length} rules; Azure allows ${NSG_MAX_RULES} per network security group`);
  const prefixes = rules.reduce((n, r) => n + (r.properties.sourceAddressPrefixes?.length ?? 1) + (r.properties.destinationAddressPrefixes?.length ?? 1), 0);
  if (prefixes > NSG_MAX_PREFIXES) throw new Error(`${name} would hold ${prefixes} address prefixes; Azure allows ${NSG_MAX_PREFIXES} per network security group`);
}

/** What a child-rule PUT carries: the rule's settings, not its read-only state. */
export function writableProps(p: RuleProps): RuleProps {
  const { provisioningState: _ignored, ...rest } = p;
  return rest;
}

export function nsgApplied(nsgId: string, r: WireRule): AppliedRule | null {
  const owner = parseRuleDescription(r.properties.description);
  if (!owner || !r.name.startsWith('jit-')) return null;
  const p = r.properties;
  return {
    name: r.name,
    scope: nsgId,
    priority: p.priority ?? 0,
    direction: 'Inbound',
    access: 'Allow',
    protocol: jitProtocol(p.protocol),
    sourcePrefix: p.sourceAddressPrefix ?? p.sourceAddressPrefixes?.join(',') ?? '*',
    destinationPort: Number(p.destinationPortRange ?? 0),
    description: p.description ?? '',
    requestId: owner.requestId,
    expiresAt: owner.expiresAt,
  };
}

/** Someone else's Allow rule, as the fallback reports what it deleted. */
export function foreignApplied(nsgId: string, r: WireRule): AppliedRule {
  const p = r.properties;
  return {
    name: r.name, scope: nsgId, priority: p.priority ?? 0, direction: 'Inbound', access: 'Allow', protocol: jitProtocol(p.protocol),
    sourcePrefix: p.sourceAddressPrefix ?? p.sourceAddressPrefixes?.join(',') ?? '*', destinationPort: Number(p.destinationPortRange ?? 0), description: p.description ?? '', requestId: '', expiresAt: 0,
  };
}

export const DENY_MARK = 'jit-bot deny';

export const denyDescription = (target: string) => `${DENY_MARK} target=${target}`;

/** `jit-deny-<target>-<port>[-proto]`, shortened (with a hash of the full name) to ARM's 80 characters. */
export function denyRuleName(target: string, p: PortSpec): string {
  const suffix = `-${p.port}${p.protocol === 'tcp' ? '' : `-${p.protocol === '*' ? 'any' : p.protocol}`}`;
  const full = `jit-deny-${target}${suffix}`;
  if (full.length <= RULE_NAME_MAX) return full;
  let h = 2166136261;
  for (const ch of full) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  const hash = h.toString(36).padStart(7, '0');
  return `jit-deny-${target.slice(0, RULE_NAME_MAX - 'jit-deny-'.length - suffix.length - hash.length - 1)}-${hash}${suffix}`;
}

/** Does this rule already deny inbound traffic from anywhere to port `p` on all of these addresses? */
export function denies(r: RuleProps, p: PortSpec, ips: string[]): boolean {
  if (r.access !== 'Deny' || (r.direction ?? 'Inbound') !== 'Inbound') return false;
  return covers(r, p, ips);
}

/** Does this rule apply to traffic from anywhere to port `p` on all of these addresses? */
export function covers(r: RuleProps, p: PortSpec, ips: string[]): boolean {
  const dests = [r.destinationAddressPrefix, ...(r.destinationAddressPrefixes ?? [])].filter((x): x is string => Boolean(x));
  const anyDest = dests.some((d) => d === '*' || d === 'VirtualNetwork');
  if (!anyDest && !ips.every((ip) => dests.some((d) => d === ip || d === `${ip}/32` || inCidr(ip, d)))) return false;
  const anySource = [r.sourceAddressPrefix, ...(r.sourceAddressPrefixes ?? [])].some((s) => s === '*' || s === 'Internet' || s === '0.0.0.0/0');
  const protoOk = r.protocol === '*' || r.protocol?.toLowerCase() === (p.protocol === '*' ? '*' : p.protocol);
  const ranges = [r.destinationPortRange, ...(r.destinationPortRanges ?? [])].filter((x): x is string => Boolean(x));
  const portOk = ranges.some((range) => {
    if (range === '*') return true;
    const [a, b] = range.split('-').map(Number);
    return b === undefined ? a === p.port : a! <= p.port && p.port <= b;
  });
  return anySource && protoOk && portOk;
}

/** Is `ip` inside the prefix `cidr` (IPv4 or IPv6; same family only)? */
export function inCidr(ip: string, cidr: string): boolean {
  if (!ipaddr.isValid(ip) || !cidr.includes('/')) return false;
  try {
    const addr = ipaddr.parse(ip);
    const [range, bits] = ipaddr.parseCIDR(cidr);
    return addr.kind() === range.kind() && addr.match(range, bits);
  } catch {
    return false;
  }
}

export function denyApplied(nsgId: string, r: WireRule): AppliedRule {
  const p = r.properties;
  return {
    name: r.name, scope: nsgId, priority: p.priority ?? 0, direction: 'Inbound', access: 'Deny', protocol: jitProtocol(p.protocol),
    sourcePrefix: '*', destinationPort: Number(p.destinationPortRange ?? 0), description: p.description ?? '', requestId: '', expiresAt: 0,
  };
}

export class NoFreePriorityError extends Error {
  constructor(nsgId: string, range: [number, number]) {
    super(`no free priority in ${range[0]}-${range[1]} on ${nsgId.split('/').pop()}; raise JIT_NSG_PRIORITY_RANGE or remove stale rules`);
    this.name = 'NoFreePriorityError';
  }
}
